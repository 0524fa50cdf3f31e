"""From an empty cloud account to a TLS site: `playbooks/up.yml` against each offline cloud
(tests/fake_digitalocean.py, moto) with the created VM backed by a real test host, then
`playbooks/teardown.yml` - the README's path to production, command for command.

What stands in for the world, and nothing else:
- the VM: a harness test host (systemd over SSH like a cloud VM). The DigitalOcean fake hands
  out its address as the droplet's public address and puts the account's key in root's
  authorized_keys as DigitalOcean's image does; moto's instance (whose addresses are real AWS
  addresses, never contacted) is mapped onto it by a host_vars file of the inventory copy.
- the fixed public address (reserved IP, Elastic IP): added to the host's loopback, so traffic
  for it never leaves the host, as the cloud routes it to the VM.
- DNS: the records the run created, read from the fake's API and written into the host's
  /etc/hosts as they appear (a resolver the test controls, with the propagation delay the
  letsencrypt role's bounded wait is there for).
- the CA: pebble on the host's loopback (molecule/_harness/pebble.yml), validating HTTP-01.

One host serves both clouds, one after the other: the stack's converge of a fresh VM is the site
scenario's subject and does not depend on the cloud; what each cloud changes (the user it logs
in as, the fixed address, its DNS, its inventory plugin) is what runs twice. The DigitalOcean run
converges the fresh host, the AWS run converges it again under another name and certificate."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading

import boto3
import pytest
import yaml

from conftest import closed_proxies, docker_exec, run, standalone_host, tail, tool
from fake_digitalocean import FakeDigitalOcean
from test_inventories import inventory_copy
from test_provision import REGION, aws_env, free_port, moto  # noqa: F401 - fixtures used here

ZONE = "flaskstack.test"
# What the DigitalOcean fake hands out (TEST-NET-2; this machine's own network and proxy sit in
# TEST-NET-1 and -3, which a host must keep reaching for its packages)
RESERVED_IP = "198.51.100.80"
FOREIGN_IP = "198.51.100.200"
# what the user's vault holds (generated as vault.yml.example says; test values, never used elsewhere)
SECRETS = {"vault_flask_app_secret_key": "PK6nYWIcIxWiVUGWlAoGbm7mpu0hDgpFAPExviVOTVX1h3RL",
           "vault_postgresql_app_password": "a1GxkA9r9bkwynpROmvw-hr_AHhE4scY",
           "vault_redis_app_password": "ueF6ckfLqk-IC9cwboZoCl087mmSj32q"}


def docker_ip(name: str) -> str:
    out = subprocess.run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                          name], capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    assert out, f"{name} has no docker address"
    return out


def must(name: str, command: str) -> str:
    done = docker_exec(name, command)
    assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
    return done.stdout


def route_locally(name: str, address: str):
    """The cloud routes the fixed address to the VM: here it is an address of the host's loopback,
    checked before any name points at it, so nothing addressed to it can leave the host."""
    must(name, f"ip -4 addr show dev lo | grep -q ' {address}/32 ' || ip addr add {address}/32 dev lo")
    assert f" {address}/32 " in must(name, "ip -4 addr show dev lo")


class Propagation:
    """Writes each A record the run creates into the host's /etc/hosts as it appears (bounded)."""

    def __init__(self, host: str, read_records, name: str):
        self.host, self.read, self.name = host, read_records, name
        self.stop, self.seen, self.error = threading.Event(), [], None
        self.thread = threading.Thread(target=self._follow, daemon=True)

    def _follow(self):
        try:
            self._poll()
        except Exception as error:  # noqa: BLE001 - handed to the test in __exit__
            self.error = error

    def _poll(self):
        while not self.stop.wait(2):
            addresses = sorted(self.read())
            if addresses and addresses != self.seen:
                for address in addresses:
                    route_locally(self.host, address)
                lines = "".join(f"{a} {self.name}\\n" for a in addresses)
                # (docker bind-mounts /etc/hosts: rewritten in place, never replaced by a rename)
                must(self.host, f"grep -v ' {self.name}$' /etc/hosts > /tmp/hosts.new; printf '{lines}' >> /tmp/hosts.new"
                                " && cat /tmp/hosts.new > /etc/hosts")
                self.seen = addresses

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)
        assert self.error is None, f"DNS propagation failed: {self.error}"


@pytest.fixture(scope="module")
def vm(tmp_path_factory):
    """One fresh test host for both clouds, with pebble as the ACME CA on its loopback."""
    state = tmp_path_factory.mktemp("up-host")
    with standalone_host(f"flaskstack-up-{os.getpid()}", state, "pytest-up-host") as host:
        name = host["name"]
        entry = yaml.safe_load(host["inventory"].read_text())["all"]["hosts"][name]
        harness = state / "harness.yml"
        harness.write_text(yaml.safe_dump({"all": {"children": {"testhosts": {"hosts": {name: entry}}}}}))
        pebble = run([tool("ansible-playbook"), "-i", harness, "molecule/_harness/pebble.yml",
                      "-e", f"molecule_ephemeral_directory={state}"], log_name="pytest-up-pebble")
        assert pebble.returncode == 0, tail(pebble.stdout + pebble.stderr)
        yield {**host, "address": docker_ip(name), "key": state / "id_ed25519",
               "public_key": (state / "id_ed25519.pub").read_text().strip(),
               "acme_ca": (state / "pebble" / "ca.pem").read_text()}


def prod_inventory(tmp_path, source: str, url: str, host_vars: dict | None = None):
    """inventories/prod as committed (test_inventories.inventory_copy: one plugin file plus the endpoint),
    with host_vars where the test maps a cloud's instance onto its host."""
    work = inventory_copy(tmp_path, "prod", source, url)
    for host, variables in (host_vars or {}).items():
        (work / "host_vars").mkdir(exist_ok=True)
        (work / "host_vars" / f"{host}.yml").write_text(yaml.safe_dump(variables))
    return work


def site_settings(vm, domain: str) -> dict:
    """What the user's group_vars and vault hold for a site on one all-in-one VM."""
    return {**SECRETS, "flaskstack_domain": domain, "flaskstack_acme_email": f"ops@{ZONE}",
            "cloud_ssh_public_key": vm["public_key"], "cloud_admin_cidr": "198.51.100.7/32",
            "cloud_dns_zone": ZONE,
            # the admin the user logs in as once base has run (sshd lets in the admin group only);
            # on DigitalOcean the first run connects as root and creates it
            "base_admin_users": [{"name": "admin", "ssh_keys": [vm["public_key"]]}],
            "cloud_hosts": [{"name": "web-1", "groups": ["web", "db", "cache"], "size": "SIZE"}],
            # the test CA instead of Let's Encrypt; the security updates are the base scenario's subject
            "letsencrypt_acme_directory": "https://localhost:14000/dir", "letsencrypt_acme_ca_certificate": vm["acme_ca"],
            "base_security_upgrades_on_first_run": False,
            "ansible_ssh_private_key_file": str(vm["key"])}


def playbook(name: str, inventory, env: dict, extra: dict, log: str):
    return run([tool("ansible-playbook"), "playbooks/" + name, "-i", inventory, "-e", json.dumps(extra)],
               env=env, log_name=f"pytest-up-{log}")


# Runs on the host: pebble's issuing root from its management API, then the site by its name
# (resolved as the CA resolved it) with only that root trusted.
HTTPS_GET = r"""
import ssl, sys, urllib.request
root = urllib.request.urlopen("https://localhost:15000/roots/0", timeout=10,
                              context=ssl._create_unverified_context()).read().decode()
page = urllib.request.urlopen(f"https://{sys.argv[1]}/", timeout=20, context=ssl.create_default_context(cadata=root))
print(page.status, page.read().decode())
"""


def serves_tls(vm, domain: str) -> str:
    """The home page over HTTPS by the site's name, trusting only the test CA's issuing root."""
    return must(vm["name"], f"python3 -c '{HTTPS_GET}' {domain}")


def knows_host_key(inventory, address: str) -> bool:
    """The inventory's known_hosts has a key for the address (ssh hashes the names it records)."""
    known = inventory / "known_hosts"
    return known.exists() and subprocess.run(["ssh-keygen", "-F", address, "-f", str(known)], capture_output=True,
                                             check=False, timeout=30).returncode == 0


def test_digitalocean_from_an_empty_account_to_a_tls_site_and_back(vm, tmp_path):
    domain = f"do.{ZONE}"
    # the account holds another project's droplet (in another region: fra1 starts with no VPC at all),
    # which takes the first public address; ours gets the test host's
    fake = FakeDigitalOcean(token="e2e-do-token", public_addresses=[FOREIGN_IP, vm["address"]],
                            reserved_addresses=[RESERVED_IP])
    fake.add_domain(ZONE)
    foreign = fake.add_droplet("shop-web-1", ["other-project", "web"], "ams3")["id"]
    api = fake.start()
    try:
        # DigitalOcean's image puts the account's keys in root's authorized_keys
        must(vm["name"], "install -d -m 0700 /root/.ssh && cp /home/admin/.ssh/authorized_keys /root/.ssh/ "
                         "&& chmod 0600 /root/.ssh/authorized_keys")
        inventory = prod_inventory(tmp_path, "digitalocean.yml", api.removesuffix("/v2"))
        env = {"DO_API_TOKEN": "e2e-do-token", **closed_proxies(free_port())}
        settings = {**site_settings(vm, domain), "cloud_provider": "digitalocean", "cloud_region": "fra1",
                    "cloud_do_api_url": api}
        settings["cloud_hosts"][0]["size"] = "s-2vcpu-4gb"

        def records():
            return [r["data"] for r in fake.domain_records.get(ZONE, []) if r["type"] == "A" and r["name"] == "do"]

        with Propagation(vm["name"], records, domain):
            up = playbook("up.yml", inventory, env, settings, "do")
        assert up.returncode == 0, tail(up.stdout + up.stderr, 60)
        assert "failed=0" in up.stdout and "unreachable=0" in up.stdout

        assert sorted(records()) == [RESERVED_IP]
        assert {ip: (r["droplet"] or {}).get("name") for ip, r in fake.reserved_ips.items()} == {RESERVED_IP: "web-1"}
        page = serves_tls(vm, domain)
        assert page.startswith("200 ") and "Notes" in page, page[:500]
        assert knows_host_key(inventory, vm["address"])  # recorded on first contact

        again = playbook("up.yml", inventory, env, settings, "do-again")
        assert again.returncode == 0, tail(again.stdout + again.stderr, 60)
        # nothing changes, in the account or on the host
        assert re.search(r"localhost\s*: ok=\d+\s+changed=0 ", again.stdout), tail(again.stdout, 30)
        assert re.search(r"web-1\s*: ok=\d+\s+changed=0 ", again.stdout), tail(again.stdout, 30)
        assert f"fixed {RESERVED_IP}" in again.stdout  # the report names what DNS must point at

        down = playbook("teardown.yml", inventory, env, {**settings, "cloud_teardown_confirm": "flaskstack"},
                        "do-teardown")
        assert down.returncode == 0, tail(down.stdout + down.stderr, 60)
        assert [d["name"] for d in fake.droplets.values()] == ["shop-web-1"]
        assert fake.droplets[foreign]["tags"] == ["other-project", "web"]
        assert fake.reserved_ips == {} and records() == []
        assert fake.domains == [ZONE]  # the user's zone stays
        # the first VPC of fra1 became its default, which DigitalOcean never deletes: left, and said so
        assert [(v["name"], v["default"]) for v in fake.vpcs.values() if v["region"] == "fra1"] == [("flaskstack", True)]
        assert "default VPC" in down.stdout
        assert not [f for f in fake.firewalls.values() if f["name"].startswith("flaskstack-")]
        assert not [k for k in fake.ssh_keys.values() if k["name"] == "flaskstack"]
    finally:
        fake.stop()


def test_aws_from_an_empty_account_to_a_tls_site_and_back(vm, tmp_path, moto, aws_env):  # noqa: F811
    domain = f"aws.{ZONE}"
    session = {"region_name": REGION, "endpoint_url": moto, "aws_access_key_id": "testing",
               "aws_secret_access_key": "testing"}
    route53, ec2 = boto3.client("route53", **session), boto3.client("ec2", **session)
    zone_id = route53.create_hosted_zone(Name=ZONE, CallerReference="e2e")["HostedZone"]["Id"]
    # moto's instance is this VM: its real-AWS addresses are never contacted
    inventory = prod_inventory(tmp_path, "aws_ec2.yml", moto, {"web-1": {"ansible_host": vm["address"]}})
    env = aws_env
    settings = {**site_settings(vm, domain), "cloud_provider": "aws", "cloud_region": REGION,
                # provision's own SSH wait dials the instance's public address - a real AWS one here
                "cloud_wait_for_ssh": False}
    settings["cloud_hosts"][0]["size"] = "t3.medium"

    def records():
        sets = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
        return [r["Value"] for s in sets if s["Type"] == "A" and s["Name"].rstrip(".") == domain
                for r in s["ResourceRecords"]]

    with Propagation(vm["name"], records, domain):
        up = playbook("up.yml", inventory, env, settings, "aws")
    assert up.returncode == 0, tail(up.stdout + up.stderr, 60)
    eips = ec2.describe_addresses(Filters=[{"Name": "tag:project", "Values": ["flaskstack"]}])["Addresses"]
    assert len(eips) == 1 and records() == [eips[0]["PublicIp"]]
    assert "Notes" in serves_tls(vm, domain)
    assert knows_host_key(inventory, vm["address"])

    down = playbook("teardown.yml", inventory, env, {**settings, "cloud_teardown_confirm": "flaskstack"},
                    "aws-teardown")
    assert down.returncode == 0, tail(down.stdout + down.stderr, 60)
    assert ec2.describe_addresses(Filters=[{"Name": "tag:project", "Values": ["flaskstack"]}])["Addresses"] == []
    assert records() == []
    assert [z["Name"] for z in route53.list_hosted_zones()["HostedZones"]] == [f"{ZONE}."]
    assert not [i for r in ec2.describe_instances(Filters=[
        {"Name": "tag:project", "Values": ["flaskstack"]},
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])["Reservations"]
        for i in r["Instances"]]
