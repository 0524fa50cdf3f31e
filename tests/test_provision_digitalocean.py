"""playbooks/provision.yml and teardown.yml against a stateful fake of the
DigitalOcean API on loopback (tests/fake_digitalocean.py: the endpoints the
community.digitalocean modules and inventory plugin use, with the API's status
codes, JSON shapes and validation). Proxies point at a closed loopback port;
the fake hands out TEST-NET addresses and the SSH wait is switched off. The
committed inventories/prod/digitalocean.yml then lists what was made."""

from __future__ import annotations

import json
import re
import time

import pytest
import yaml

from conftest import REPO, closed_proxies, run, tail, tool
from test_inventories import DO_TOKEN, inventory_copy
from fake_digitalocean import FakeDigitalOcean
from test_provision import FLEET, KEY, free_port

TOKEN = DO_TOKEN  # DO_API_TOKEN in the environment, the only credential the committed digitalocean.yml uses
ZONE, OTHERS = "flaskstack.net", "198.51.100.77"  # a domain of the account; an A record someone else made in it
SETTINGS = {"cloud_provider": "digitalocean", "cloud_region": "fra1", "cloud_ssh_public_key": KEY,
            "cloud_admin_cidr": "198.51.100.7/32", "cloud_wait_for_ssh": False,
            "cloud_dns_zone": ZONE, "cloud_dns_names": [f"shop.{ZONE}", ZONE],
            "cloud_hosts": [{**h, "size": "s-2vcpu-4gb" if "db" in h["groups"] else "s-1vcpu-2gb"} for h in FLEET]}
STAGING = {"cloud_provider": "digitalocean", "cloud_region": "fra1", "cloud_ssh_public_key": KEY,
           "cloud_admin_cidr": "198.51.100.7/32", "cloud_wait_for_ssh": False,
           "cloud_hosts": [{"name": "staging-1", "groups": ["web", "db", "cache"], "size": "s-2vcpu-4gb"}]}
# A play that runs the role and prints what it leaves for the plays after it.
FACTS_PLAY = [{"name": "Provision and report", "hosts": "localhost", "connection": "local", "gather_facts": False,
               "roles": ["flaskstack.deploy.cloud"],
               "post_tasks": [{"name": "Report", "ansible.builtin.debug": {
                   "msg": "FACTS {{ {'created': __cloud_created_names | default('undefined'), 'inventory': cloud_inventory} | to_json }}"}}]}]


@pytest.fixture(scope="module")
def fake():
    api = FakeDigitalOcean(token=TOKEN, reads_while_new=0)  # an account with no VPC anywhere yet
    api.start()
    api.add_domain(ZONE)
    api.add_record(ZONE, "shop", OTHERS)
    yield api
    api.stop()


@pytest.fixture(scope="module")
def do_env(fake):
    return {"DO_API_TOKEN": TOKEN, **closed_proxies(free_port()), "AWS_ACCESS_KEY_ID": "", "AWS_PROFILE": ""}


@pytest.fixture(scope="module")
def inventory(tmp_path_factory, fake):
    """inventories/prod as committed (digitalocean.yml plus baseurl, no EC2 file)."""
    return inventory_copy(tmp_path_factory.mktemp("inv"), "prod", "digitalocean.yml", fake.url.removesuffix("/v2"))


@pytest.fixture(scope="module")
def facts_play(tmp_path_factory):
    path = tmp_path_factory.mktemp("play") / "provision_facts.yml"
    path.write_text(yaml.safe_dump(FACTS_PLAY))
    return path


def playbook(name, inventory, env, fake, extra, log):
    path = name if not isinstance(name, str) else REPO / "playbooks" / name
    return run([tool("ansible-playbook"), "-i", inventory, path,
                "-e", json.dumps({"cloud_do_api_url": fake.url, **extra})], env=env, log_name=f"pytest-do-{log}")


def facts(result) -> dict:
    """created (__cloud_created_names) and inventory (cloud_inventory, by name) from FACTS_PLAY's report."""
    assert result.returncode == 0, tail(result.stdout + result.stderr, 60)
    quoted = re.search(r'"msg": ("FACTS .*")', result.stdout).group(1)
    found = json.loads(json.loads(quoted).removeprefix("FACTS "))
    return {"created": found["created"], "inventory": {h["name"]: h for h in found["inventory"]}}


def changed(result) -> int:
    return sum(int(n) for n in re.findall(r"changed=(\d+)", result.stdout))


def said(result) -> str:
    return " ".join((result.stdout + result.stderr).split())


def droplets(fake, project="flaskstack") -> dict[str, dict]:
    return {d["name"]: d for d in fake.droplets.values() if project in d["tags"]}


def project_ips(fake, project="flaskstack") -> dict[str, str]:
    """reserved IP -> name of the droplet it is assigned to ('' if none), of the DigitalOcean project"""
    ids = [p["id"] for p in fake.projects.values() if p["name"] == project]
    return {ip: (r["droplet"] or {}).get("name", "") for ip, r in fake.reserved_ips.items() if r["project_id"] in ids}


def a_records(fake, name) -> list[str]:
    return sorted(r["data"] for r in fake.domain_records[ZONE] if r["type"] == "A" and r["name"] == name)


@pytest.fixture(scope="module")
def provisioned(inventory, do_env, fake, facts_play):
    first = playbook(facts_play, inventory, do_env, fake, SETTINGS, "provision")
    fake.clear_requests()
    again = playbook("provision.yml", inventory, do_env, fake, SETTINGS, "provision-again")
    assert again.returncode == 0, tail(again.stdout + again.stderr, 60)
    return {"first": facts(first), "again": again, "writes_on_rerun": list(fake.requests)}


def test_the_fleet_is_created_as_declared(provisioned, fake):
    made = droplets(fake)
    assert sorted(made) == sorted(h["name"] for h in FLEET)
    vpc = next(v for v in fake.vpcs.values() if v["name"] == "flaskstack")
    assert vpc["region"] == "fra1" and vpc["ip_range"] == "10.30.0.0/20"
    assert vpc["default"] and len(fake.vpcs) == 1  # the account had none: the first VPC of fra1 is its default
    key = next(k for k in fake.ssh_keys.values() if k["name"] == "flaskstack")
    for host in SETTINGS["cloud_hosts"]:
        d = made[host["name"]]
        assert d["image"]["slug"] == "debian-12-x64" and d["size_slug"] == host["size"]
        assert d["region"]["slug"] == "fra1" and d["vpc_uuid"] == vpc["id"]
        assert set(d["tags"]) == {"flaskstack", "flaskstack-env-prod", *host["groups"],
                                  *(f"flaskstack-{g}" for g in host["groups"])}
    assert key["public_key"] == KEY


def test_firewalls_attach_by_tag_and_open_only_what_each_group_needs(provisioned, fake):
    walls = {f["name"]: f for f in fake.firewalls.values()}
    assert sorted(walls) == ["flaskstack-cache", "flaskstack-db", "flaskstack-lb", "flaskstack-web"]

    def inbound(name):
        rules = set()
        for r in walls[name]["inbound_rules"]:
            for source in r["sources"].get("addresses", []) + [f"tag:{t}" for t in r["sources"].get("tags", [])]:
                rules.add((r["ports"], source))
        return rules

    admin = ("22", "198.51.100.7/32")
    assert inbound("flaskstack-lb") == {admin, ("80", "0.0.0.0/0"), ("80", "::/0"), ("443", "0.0.0.0/0"),
                                        ("443", "::/0")}
    assert inbound("flaskstack-web") == {admin, ("8080", "tag:flaskstack-lb")}
    assert inbound("flaskstack-db") == {admin, ("5432", "tag:flaskstack-web")}
    assert inbound("flaskstack-cache") == {admin, ("6379", "tag:flaskstack-web")}
    for name, wall in walls.items():
        assert wall["tags"] == [name]


def test_a_second_run_changes_nothing(provisioned):
    assert changed(provisioned["again"]) == 0, tail(provisioned["again"].stdout, 40)
    # the VPC module PUTs its (unchanged) VPC on every run; nothing else is written
    writes = [r for r in provisioned["writes_on_rerun"] if r[0] != "GET"]
    assert all(method == "PUT" and path.startswith("/v2/vpcs/") for method, path in writes), writes


def test_the_committed_inventory_groups_what_was_made(provisioned, inventory, do_env, fake):
    listing = json.loads(run([tool("ansible-inventory"), "-i", inventory / "digitalocean.yml", "--list"],
                             env=do_env, log_name="pytest-do-inventory").stdout)
    assert listing["lb"]["hosts"] == ["lb-1"]
    assert sorted(listing["web"]["hosts"]) == ["web-1", "web-2"]
    assert listing["db"]["hosts"] == ["db-1"] and listing["cache"]["hosts"] == ["cache-1"]
    for name, d in droplets(fake).items():
        private = next(n["ip_address"] for n in d["networks"]["v4"] if n["type"] == "private")
        address = listing["_meta"]["hostvars"][name]["flaskstack_private_ip"]
        assert (address.get("__ansible_unsafe") if isinstance(address, dict) else address) == private


def test_hosts_where_tls_ends_get_a_reserved_ip_of_the_project_and_dns_points_at_it(provisioned, fake):
    made = provisioned["first"]
    assert sorted(made["created"]) == sorted(h["name"] for h in FLEET)  # __cloud_created_names
    ips = project_ips(fake)
    assert list(ips.values()) == ["lb-1"], fake.reserved_ips  # one reserved IP, in the project, on the balancer
    fixed = next(iter(ips))
    assert fake.reserved_ips[fixed]["region"]["slug"] == "fra1"
    for name, host in made["inventory"].items():
        d = droplets(fake)[name]
        assert host["fixed_ip"] == (fixed if name == "lb-1" else "")
        assert host["public_ip"] == next(n["ip_address"] for n in d["networks"]["v4"] if n["type"] == "public")
        assert host["private_ip"] == next(n["ip_address"] for n in d["networks"]["v4"] if n["type"] == "private")
    # A records at the fixed address, TTL 300; the record someone else made for shop stays
    assert a_records(fake, "shop") == sorted([fixed, OTHERS]) and a_records(fake, "@") == [fixed]
    assert {r["ttl"] for r in fake.domain_records[ZONE] if r["type"] == "A" and r["data"] == fixed} == {300}


def test_a_replaced_balancer_gets_its_reserved_ip_back(provisioned, inventory, do_env, fake, facts_play):
    (fixed, _), = project_ips(fake).items()
    old = droplets(fake)["lb-1"]["id"]
    fake.delete_droplet_now(old)  # lost: the reserved IP stays in the account, unassigned
    assert project_ips(fake) == {fixed: ""}
    made = facts(playbook(facts_play, inventory, do_env, fake, SETTINGS, "provision-replace-lb"))
    assert made["created"] == ["lb-1"] and droplets(fake)["lb-1"]["id"] != old
    assert project_ips(fake) == {fixed: "lb-1"} and made["inventory"]["lb-1"]["fixed_ip"] == fixed
    assert a_records(fake, "shop") == sorted([fixed, OTHERS]) and a_records(fake, "@") == [fixed]


def test_two_balancers_two_records_and_a_removed_ones_address_and_records_go(provisioned, inventory, do_env, fake,
                                                                              facts_play):
    (first, _), = project_ips(fake).items()
    two = {**SETTINGS, "cloud_hosts": SETTINGS["cloud_hosts"] + [{"name": "lb-2", "groups": ["lb"],
                                                                   "size": "s-1vcpu-2gb"}]}
    made = facts(playbook(facts_play, inventory, do_env, fake, two, "provision-lb-2"))
    assert made["created"] == ["lb-2"]
    ips = project_ips(fake)
    second = made["inventory"]["lb-2"]["fixed_ip"]
    assert ips == {first: "lb-1", second: "lb-2"} and made["inventory"]["lb-1"]["fixed_ip"] == first
    assert a_records(fake, "shop") == sorted([first, second, OTHERS]) and a_records(fake, "@") == sorted([first, second])
    gone = playbook("provision.yml", inventory, do_env, fake, {**SETTINGS, "cloud_remove_hosts": ["lb-2"]},
                    "provision-lb-2-removed")
    assert gone.returncode == 0, tail(gone.stdout + gone.stderr, 40)
    assert project_ips(fake) == {first: "lb-1"} and second not in fake.reserved_ips  # released, not billed unused
    assert a_records(fake, "shop") == sorted([first, OTHERS]) and a_records(fake, "@") == [first]


def test_a_host_moved_to_other_groups_gets_its_tags_updated(provisioned, inventory, do_env, fake):
    before = droplets(fake)["web-2"]["id"]
    moved = {**SETTINGS, "cloud_hosts": [{**h, "groups": ["cache"]} if h["name"] == "web-2" else h
                                         for h in SETTINGS["cloud_hosts"]]}
    result = playbook("provision.yml", inventory, do_env, fake, moved, "provision-move-web-2")
    assert result.returncode == 0, tail(result.stdout + result.stderr, 40)
    web2 = droplets(fake)["web-2"]
    assert web2["id"] == before and set(web2["tags"]) == {"flaskstack", "flaskstack-env-prod", "cache", "flaskstack-cache"}
    back = playbook("provision.yml", inventory, do_env, fake, SETTINGS, "provision-move-web-2-back")
    assert back.returncode == 0, tail(back.stdout + back.stderr, 40)
    assert set(droplets(fake)["web-2"]["tags"]) == {"flaskstack", "flaskstack-env-prod", "web", "flaskstack-web"}
    assert set(droplets(fake)["web-1"]["tags"]) == {"flaskstack", "flaskstack-env-prod", "web", "flaskstack-web"}


def test_the_droplet_wait_is_an_input_of_ten_minutes(tmp_path, do_env):
    """Creation waits cloud_do_wait_timeout (600 s by default), not the module's 120 s: with 10 s, a droplet
    that stays "new" fails the run after about 10 s."""
    assert yaml.safe_load((REPO / "roles/cloud/defaults/main.yml").read_text())["cloud_do_wait_timeout"] == 600
    slow = FakeDigitalOcean(token=TOKEN, reads_while_new=10**6)
    slow.start()
    try:
        inv = inventory_copy(tmp_path, "prod", "digitalocean.yml", slow.url.removesuffix("/v2"))
        one = {**SETTINGS, "cloud_dns_zone": "", "cloud_dns_names": [], "cloud_do_wait_timeout": 10,
               "cloud_hosts": [{"name": "web-1", "groups": ["web"], "size": "s-1vcpu-2gb"}]}
        started = time.monotonic()
        result = run([tool("ansible-playbook"), "-i", inv, REPO / "playbooks" / "provision.yml",
                      "-e", json.dumps({"cloud_do_api_url": slow.url, **one})],
                     env=do_env, log_name="pytest-do-wait-timeout", timeout=300)
        took = time.monotonic() - started
    finally:
        slow.stop()
    assert result.returncode != 0 and "Wait for Droplet [active,off] status timeout" in said(result), tail(result.stdout)
    assert took < 90, f"the run waited {took:.0f} s: the wait is not cloud_do_wait_timeout"


def test_adding_a_host_creates_just_that_host_and_removing_one_needs_confirmation(provisioned, inventory,
                                                                                  do_env, fake):
    before = {n: d["id"] for n, d in droplets(fake).items()}
    grown = {**SETTINGS, "cloud_hosts": SETTINGS["cloud_hosts"] + [{"name": "web-3", "groups": ["web"],
                                                                     "size": "s-1vcpu-2gb"}]}
    result = playbook("provision.yml", inventory, do_env, fake, grown, "provision-grow")
    assert result.returncode == 0, tail(result.stdout + result.stderr, 40)
    after = {n: d["id"] for n, d in droplets(fake).items()}
    assert sorted(after) == sorted([*before, "web-3"])
    assert all(after[n] == before[n] for n in before)
    refused = playbook("provision.yml", inventory, do_env, fake, SETTINGS, "provision-shrink-refused")
    assert refused.returncode != 0 and "['web-3'] run in flaskstack but are no longer in cloud_hosts" in said(refused)
    assert "web-3" in droplets(fake)
    removed = playbook("provision.yml", inventory, do_env, fake, {**SETTINGS, "cloud_remove_hosts": ["web-3"]},
                       "provision-shrink")
    assert removed.returncode == 0, tail(removed.stdout + removed.stderr, 40)
    assert sorted(droplets(fake)) == sorted(before)


def test_missing_token_is_named_before_any_api_call(inventory, do_env, fake):
    fake.clear_requests()
    result = playbook("provision.yml", inventory, {**do_env, "DO_API_TOKEN": ""}, fake, SETTINGS, "no-token")
    assert result.returncode != 0 and "No DigitalOcean API token" in said(result)
    # only the dynamic inventory (its own token in its file) asked for the droplets
    assert set(fake.requests) <= {("GET", "/v2/droplets")}, fake.requests


def test_a_size_the_api_rejects_is_reported_with_its_message(provisioned, inventory, do_env, fake):
    odd = {**SETTINGS, "cloud_hosts": SETTINGS["cloud_hosts"] + [{"name": "odd-1", "groups": ["web"],
                                                                   "size": "s-64vcpu-huge"}]}
    result = playbook("provision.yml", inventory, do_env, fake, odd, "bad-size")
    assert result.returncode != 0
    assert "s-64vcpu-huge" in said(result) and "Traceback" not in result.stdout, tail(result.stdout, 30)
    assert "odd-1" not in droplets(fake)


def only_the_inventory_asked(fake) -> bool:
    """nothing but the dynamic inventory's droplet listing reached the API, and nothing was written"""
    return set(fake.requests) <= {("GET", "/v2/droplets")} and fake.mutating_requests == 0


def test_an_inventory_file_of_another_project_is_refused_before_any_api_call(inventory, do_env, fake):
    """The committed digitalocean.yml selects the tag flaskstack: droplets of another project would be
    made, and then never be in the inventory site.yml runs on."""
    fake.clear_requests()
    result = playbook("provision.yml", inventory, do_env, fake, {**SETTINGS, "cloud_project": "flaskstack-other"},
                      "inventory-project")
    assert result.returncode != 0
    assert ("digitalocean.yml: filters ['\"flaskstack\" in do_tags'] but cloud_project is 'flaskstack-other'"
            in said(result)), tail(result.stdout, 30)
    assert only_the_inventory_asked(fake), fake.requests


def test_settings_of_another_provider_are_refused_before_any_api_call(inventory, do_env, fake):
    fake.clear_requests()
    bad = {**SETTINGS, "cloud_region": "eu-central-1",
           "cloud_hosts": [{**h, "size": "t3.small"} if h["name"] == "web-1" else h for h in SETTINGS["cloud_hosts"]]}
    result = playbook("provision.yml", inventory, do_env, fake, bad, "aws-settings")
    out = said(result)
    assert result.returncode != 0
    assert "cloud_region: 'eu-central-1' is not a DigitalOcean region slug" in out, tail(result.stdout, 30)
    assert "cloud_hosts: web-1: t3.small - not DigitalOcean size slugs" in out
    outside = playbook("provision.yml", inventory, do_env, fake,
                       {**SETTINGS, "cloud_dns_names": [f"shop.{ZONE}", "shop.example.org"]}, "outside-zone")
    assert outside.returncode != 0
    assert f"cloud_dns_names: shop.example.org not inside cloud_dns_zone '{ZONE}'" in said(outside)
    assert only_the_inventory_asked(fake), fake.requests


@pytest.mark.parametrize("cidr", ["10.30.0.0/12", "8.8.0.0/16", "10.30.0.1/20", "10.30.0.0/29", "10.30.0.0"])
def test_a_vpc_range_digitalocean_does_not_take_is_refused_before_any_api_call(inventory, do_env, fake, cidr):
    fake.clear_requests()
    result = playbook("provision.yml", inventory, do_env, fake, {**SETTINGS, "cloud_do_vpc_cidr": cidr},
                      f"vpc-range-{cidr.replace('/', '_')}")
    assert result.returncode != 0
    assert f"cloud_do_vpc_cidr: '{cidr}' is not a private IPv4 network between /16 and /28" in said(result)
    assert only_the_inventory_asked(fake), fake.requests


def test_a_dns_zone_not_in_the_account_is_refused_before_anything_is_created(provisioned, inventory, do_env, fake):
    fake.clear_requests()
    elsewhere = {**SETTINGS, "cloud_dns_zone": "flaskstack.org", "cloud_dns_names": ["shop.flaskstack.org"]}
    result = playbook("provision.yml", inventory, do_env, fake, elsewhere, "zone-elsewhere")
    assert result.returncode != 0
    assert "cloud_dns_zone: 'flaskstack.org' is not a domain of this DigitalOcean account" in said(result)
    assert fake.mutating_requests == 0, fake.requests


def test_staging_beside_prod_in_one_account(provisioned, tmp_path, do_env, fake):
    """inventories/staging as committed (its own project, VPC range and hosts) in prod's account: both live,
    and staging's provision and teardown leave every resource of prod as it was."""
    prod = {"droplets": droplets(fake), "ips": project_ips(fake), "keys": fake.ssh_keys,
            "vpcs": fake.vpcs, "records": fake.domain_records, "firewalls": fake.firewalls}
    staging = inventory_copy(tmp_path, "staging", "digitalocean.yml", fake.url.removesuffix("/v2"))
    made = playbook("provision.yml", staging, do_env, fake, STAGING, "staging-provision")
    assert made.returncode == 0, tail(made.stdout + made.stderr, 40)
    assert list(droplets(fake, "flaskstack-staging")) == ["staging-1"]
    vpc = next(v for v in fake.vpcs.values() if v["name"] == "flaskstack-staging")
    assert vpc["ip_range"] == "10.30.16.0/20" and not vpc["default"]
    assert list(project_ips(fake, "flaskstack-staging").values()) == ["staging-1"]  # TLS on the web host
    assert fake.ssh_keys == prod["keys"]  # prod's key (same public key) used as it is, not renamed
    assert droplets(fake) == prod["droplets"] and project_ips(fake) == prod["ips"]
    gone = playbook("teardown.yml", staging, do_env, fake, {**STAGING, "cloud_teardown_confirm": "flaskstack-staging"},
                    "staging-teardown")
    assert gone.returncode == 0, tail(gone.stdout + gone.stderr, 40)
    assert droplets(fake, "flaskstack-staging") == {} and project_ips(fake, "flaskstack-staging") == {}
    assert not [v for v in fake.vpcs.values() if v["name"] == "flaskstack-staging"]
    assert not [p for p in fake.projects.values() if p["name"] == "flaskstack-staging"]
    assert {"droplets": droplets(fake), "ips": project_ips(fake), "keys": fake.ssh_keys, "vpcs": fake.vpcs,
            "records": fake.domain_records, "firewalls": fake.firewalls} == prod


def test_an_environment_on_an_overlapping_vpc_range_is_refused_before_anything_is_created(provisioned, tmp_path,
                                                                                        do_env, fake):
    """staging given prod's range: DigitalOcean would refuse the VPC only after the key went up - asked first."""
    fake.clear_requests()
    staging = inventory_copy(tmp_path, "staging", "digitalocean.yml", fake.url.removesuffix("/v2"))
    refused = playbook("provision.yml", staging, do_env, fake, {**STAGING, "cloud_do_vpc_cidr": "10.30.8.0/21"},
                       "staging-overlap")
    assert refused.returncode != 0
    assert ("cloud_do_vpc_cidr: 10.30.8.0/21 overlaps flaskstack (10.30.0.0/20, fra1) in this DigitalOcean account"
            in said(refused)), tail(refused.stdout, 30)
    assert fake.mutating_requests == 0, fake.requests


def test_teardown_needs_confirmation_then_removes_everything(provisioned, inventory, do_env, fake):
    refused = playbook("teardown.yml", inventory, do_env, fake, SETTINGS, "teardown-refused")
    assert refused.returncode != 0 and "confirm with -e cloud_teardown_confirm=flaskstack" in said(refused)
    assert droplets(fake)
    confirmed = {**SETTINGS, "cloud_teardown_confirm": "flaskstack"}
    done = playbook("teardown.yml", inventory, do_env, fake, confirmed, "teardown")
    assert done.returncode == 0, tail(done.stdout + done.stderr, 40)
    assert droplets(fake) == {}
    assert not [f for f in fake.firewalls.values() if f["name"].startswith("flaskstack-")]
    # the account had no VPC: ours became fra1's default, which cannot be deleted - left, and said so
    assert [v["name"] for v in fake.vpcs.values()] == ["flaskstack"]
    assert "VPC flaskstack (10.30.0.0/20) is the default VPC of fra1 and cannot be deleted" in said(done)
    assert not [k for k in fake.ssh_keys.values() if k["name"] == "flaskstack"]
    # reserved IPs released, the project gone, our A records removed; the domain and others' record stay
    assert fake.reserved_ips == {} and not [p for p in fake.projects.values() if p["name"] == "flaskstack"]
    assert fake.domains == [ZONE] and a_records(fake, "shop") == [OTHERS] and a_records(fake, "@") == []
    again = playbook("teardown.yml", inventory, do_env, fake, confirmed, "teardown-again")
    assert again.returncode == 0 and changed(again) == 0, tail(again.stdout, 40)
    listing = json.loads(run([tool("ansible-inventory"), "-i", inventory / "digitalocean.yml", "--list"],
                             env=do_env, log_name="pytest-do-teardown-inventory").stdout)
    assert listing["_meta"]["hostvars"] == {}


# ---- an account with other people's resources: same droplet names, the same key uploaded by hand ----
@pytest.fixture(scope="module")
def shared():
    api = FakeDigitalOcean(token=TOKEN, reads_while_new=0)
    api.start()
    laptop = api.add_ssh_key("laptop", KEY)  # the user's own upload of our public key
    theirs = [api.add_droplet("lb-1", ["other-project", "lb"]), api.add_droplet("web-1", ["other-project", "web"]),
              api.add_droplet("staging-2", ["other-project", "web", "db", "cache"])]
    ip = api.add_reserved_ip(droplet_id=theirs[0]["id"])["ip"]  # theirs, in the default project
    yield {"api": api, "key": laptop, "droplets": {d["id"]: d for d in theirs}, "ip": ip}
    api.stop()


def foreign_state(shared) -> dict:
    api = shared["api"]
    return {"droplets": {i: (d["name"], d["tags"]) for i, d in api.droplets.items() if i in shared["droplets"]},
            "keys": api.ssh_keys, "ip": api.reserved_ips[shared["ip"]]}


def test_a_name_another_projects_droplet_has_is_refused_before_anything_is_created(tmp_path, do_env, shared):
    api, before = shared["api"], foreign_state(shared)
    inv = inventory_copy(tmp_path, "prod", "digitalocean.yml", api.url.removesuffix("/v2"))
    api.clear_requests()
    settings = {**SETTINGS, "cloud_dns_zone": "", "cloud_dns_names": []}
    result = playbook("provision.yml", inv, do_env, api, settings, "foreign-names")
    assert result.returncode != 0
    assert "cloud_hosts: lb-1, web-1 already exist in this DigitalOcean account without the tag flaskstack" \
        in said(result), tail(result.stdout, 30)
    assert api.mutating_requests == 0, api.requests
    assert foreign_state(shared) == before and droplets(api) == {}


def test_others_droplets_and_key_are_neither_adopted_nor_removed(tmp_path, do_env, shared):
    api, before = shared["api"], foreign_state(shared)
    inv = inventory_copy(tmp_path, "staging", "digitalocean.yml", api.url.removesuffix("/v2"))
    made = playbook("provision.yml", inv, do_env, api, STAGING, "foreign-provision")
    assert made.returncode == 0, tail(made.stdout + made.stderr, 40)
    assert list(droplets(api, "flaskstack-staging")) == ["staging-1"]
    # the key the user uploaded serves the new droplet under its own name; no second copy, no rename
    assert api.ssh_keys == before["keys"]
    assert foreign_state(shared) == before  # their droplets, tags and reserved IP as they were
    gone = playbook("teardown.yml", inv, do_env, api, {**STAGING, "cloud_teardown_confirm": "flaskstack-staging"},
                    "foreign-teardown")
    assert gone.returncode == 0, tail(gone.stdout + gone.stderr, 40)
    assert droplets(api, "flaskstack-staging") == {}
    assert api.ssh_keys == before["keys"]  # the user's key stays
    assert foreign_state(shared) == before


def test_the_fake_hands_out_the_addresses_it_is_given():
    """For end-to-end tests: droplets' public addresses and reserved IPs come from the given lists, in order."""
    api = FakeDigitalOcean(token=TOKEN, public_addresses=["127.0.0.21", "127.0.0.22"],
                           reserved_addresses=iter(["127.0.0.31"]))
    first, second = api.add_droplet("a-1"), api.add_droplet("a-2", ["x"], region="ams3")
    public = [[n["ip_address"] for n in d["networks"]["v4"] if n["type"] == "public"] for d in (first, second)]
    assert public == [["127.0.0.21"], ["127.0.0.22"]]
    assert api.add_reserved_ip(droplet_id=first["id"])["ip"] == "127.0.0.31"
    assert api.reserved_ips["127.0.0.31"]["droplet"]["name"] == "a-1"
    assert api.add_domain("example.net")["name"] == "example.net" and api.domains == ["example.net"]
    assert {r["type"] for r in api.domain_records["example.net"]} == {"SOA", "NS"}
    assert [(v["region"], v["default"]) for v in api.vpcs.values()] == [("fra1", True), ("ams3", True)]
