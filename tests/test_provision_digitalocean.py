"""playbooks/provision.yml and teardown.yml against a stateful fake of the
DigitalOcean API on loopback (tests/fake_digitalocean.py: the endpoints the
community.digitalocean modules and inventory plugin use, with the API's status
codes, JSON shapes and validation). Proxies point at a closed loopback port;
the fake hands out TEST-NET addresses and the SSH wait is switched off. The
committed inventories/prod/digitalocean.yml then lists what was made."""

from __future__ import annotations

import json
import re

import pytest

from conftest import REPO, run, tail, tool
from test_inventories import inventory_copy
from fake_digitalocean import FakeDigitalOcean
from test_provision import FLEET, KEY, free_port

TOKEN = "fake-do-token"  # what test_inventories.inventory_copy writes into digitalocean.yml
SETTINGS = {"cloud_provider": "digitalocean", "cloud_region": "fra1", "cloud_ssh_public_key": KEY,
            "cloud_admin_cidr": "198.51.100.7/32", "cloud_wait_for_ssh": False,
            "cloud_hosts": [{**h, "size": "s-2vcpu-4gb" if "db" in h["groups"] else "s-1vcpu-2gb"} for h in FLEET]}


@pytest.fixture(scope="module")
def fake():
    api = FakeDigitalOcean(token=TOKEN, reads_while_new=0)
    api.start()
    yield api
    api.stop()


@pytest.fixture(scope="module")
def do_env(fake):
    closed = f"http://127.0.0.1:{free_port()}"
    return {"DO_API_TOKEN": TOKEN, "HTTP_PROXY": closed, "HTTPS_PROXY": closed, "http_proxy": closed,
            "https_proxy": closed, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
            "AWS_ACCESS_KEY_ID": "", "AWS_PROFILE": ""}


@pytest.fixture(scope="module")
def inventory(tmp_path_factory, fake):
    """inventories/prod as committed (digitalocean.yml plus the endpoint, no EC2 file)."""
    return inventory_copy(tmp_path_factory.mktemp("inv"), "prod", "digitalocean.yml", fake.url.removesuffix("/v2"))


def playbook(name, inventory, env, fake, extra, log):
    return run([tool("ansible-playbook"), "-i", inventory, REPO / "playbooks" / name,
                "-e", json.dumps({"cloud_do_api_url": fake.url, **extra})], env=env, log_name=f"pytest-do-{log}")


def changed(result) -> int:
    return sum(int(n) for n in re.findall(r"changed=(\d+)", result.stdout))


def said(result) -> str:
    return " ".join((result.stdout + result.stderr).split())


def droplets(fake) -> dict[str, dict]:
    return {d["name"]: d for d in fake.droplets.values() if "flaskstack" in d["tags"]}


@pytest.fixture(scope="module")
def provisioned(inventory, do_env, fake):
    first = playbook("provision.yml", inventory, do_env, fake, SETTINGS, "provision")
    assert first.returncode == 0, tail(first.stdout + first.stderr, 60)
    fake.clear_requests()
    again = playbook("provision.yml", inventory, do_env, fake, SETTINGS, "provision-again")
    assert again.returncode == 0, tail(again.stdout + again.stderr, 60)
    return {"first": first, "again": again, "writes_on_rerun": list(fake.requests)}


def test_the_fleet_is_created_as_declared(provisioned, fake):
    made = droplets(fake)
    assert sorted(made) == sorted(h["name"] for h in FLEET)
    vpc = next(v for v in fake.vpcs.values() if v["name"] == "flaskstack")
    assert vpc["region"] == "fra1" and vpc["ip_range"] == "10.30.0.0/20"
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


def test_teardown_needs_confirmation_then_removes_everything(provisioned, inventory, do_env, fake):
    refused = playbook("teardown.yml", inventory, do_env, fake, SETTINGS, "teardown-refused")
    assert refused.returncode != 0 and "confirm with -e cloud_teardown_confirm=flaskstack" in said(refused)
    assert droplets(fake)
    confirmed = {**SETTINGS, "cloud_teardown_confirm": "flaskstack"}
    done = playbook("teardown.yml", inventory, do_env, fake, confirmed, "teardown")
    assert done.returncode == 0, tail(done.stdout + done.stderr, 40)
    assert droplets(fake) == {}
    assert not [f for f in fake.firewalls.values() if f["name"].startswith("flaskstack-")]
    assert not [v for v in fake.vpcs.values() if v["name"] == "flaskstack"]
    assert not [k for k in fake.ssh_keys.values() if k["name"] == "flaskstack"]
    again = playbook("teardown.yml", inventory, do_env, fake, confirmed, "teardown-again")
    assert again.returncode == 0 and changed(again) == 0, tail(again.stdout, 40)
    listing = json.loads(run([tool("ansible-inventory"), "-i", inventory / "digitalocean.yml", "--list"],
                             env=do_env, log_name="pytest-do-teardown-inventory").stdout)
    assert listing["_meta"]["hostvars"] == {}
