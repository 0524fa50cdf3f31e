"""playbooks/provision.yml and teardown.yml against EC2 as moto serves it on
loopback (strict AMI, key pair and instance type validation), with a Debian
image catalogue that has decoys the lookup must not pick. Nothing can reach a
real cloud: proxies point at a closed loopback port and moto's instances
(which carry real public AWS addresses) are never contacted - the SSH wait is
switched off. The committed inventories/prod/aws_ec2.yml then lists what was
made, grouped as site.yml needs it."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time

import boto3
import pytest

from conftest import REPO, run, tail, tool
from test_inventories import inventory_copy

DEBIAN = "136693071363"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMpdkhNbyGwpKC1LiDNdpX4tCbFX5KFab86Lqegdj2fD ops@test"  # public half only
# newest official image first; every other one is a decoy for some reason
AMIS = [
    {"ami_id": "ami-0d1e2b1a2a0b0c0d1", "name": "debian-12-amd64-20261101-2000", "owner_id": DEBIAN,
     "architecture": "x86_64", "creation_date": "2026-11-01T20:00:00.000Z"},
    {"ami_id": "ami-0d1e2b1a2a0b0c0d0", "name": "debian-12-amd64-20260901-1800", "owner_id": DEBIAN,
     "architecture": "x86_64", "creation_date": "2026-09-01T18:00:00.000Z"},  # older
    {"ami_id": "ami-0a0b0c0d0e0f01234", "name": "debian-12-arm64-20261120-2100", "owner_id": DEBIAN,
     "architecture": "arm64", "creation_date": "2026-11-20T21:00:00.000Z"},  # other architecture
    {"ami_id": "ami-0badbadbadbad0001", "name": "debian-12-amd64-20261125-0000", "owner_id": "111122223333",
     "architecture": "x86_64", "creation_date": "2026-11-25T00:00:00.000Z"},  # another owner, newest
]
NEWEST_OFFICIAL = AMIS[0]["ami_id"]
FLEET = [
    {"name": "lb-1", "groups": ["lb"], "size": "t3.small"},
    {"name": "web-1", "groups": ["web"], "size": "t3.small"},
    {"name": "web-2", "groups": ["web"], "size": "t3.small"},
    {"name": "db-1", "groups": ["db"], "size": "t3.medium"},
    {"name": "cache-1", "groups": ["cache"], "size": "t3.small"},
]
SETTINGS = {"cloud_ssh_public_key": KEY, "cloud_admin_cidr": "198.51.100.7/32", "cloud_wait_for_ssh": False,
            "cloud_hosts": FLEET}
REGION = "eu-central-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    work = tmp_path_factory.mktemp("moto")
    amis = work / "amis.json"
    amis.write_text(json.dumps([{**a, "state": "available", "public": True, "image_type": "machine",
                                 "virtualization_type": "hvm", "hypervisor": "xen", "root_device_type": "ebs",
                                 "root_device_name": "/dev/xvda", "sriov": "simple",
                                 "description": a["name"]} for a in AMIS]))
    port = free_port()
    env = dict(os.environ, MOTO_AMIS_PATH=str(amis), MOTO_ENABLE_AMI_VALIDATION="true",
               MOTO_ENABLE_KEYPAIR_VALIDATION="true", MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION="true")
    log = (REPO / ".logs" / "pytest-moto.log").open("w")
    server = subprocess.Popen([tool("moto_server"), "-H", "127.0.0.1", "-p", str(port)], env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        server.kill()
        pytest.fail("moto_server did not start (see .logs/pytest-moto.log)")
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(10)
    log.close()


@pytest.fixture(scope="module")
def aws_env(moto):
    """Dummy credentials, moto as the endpoint, and every proxy on a closed loopback port."""
    closed = f"http://127.0.0.1:{free_port()}"
    return {"AWS_URL": moto, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION, "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_CONFIG_FILE": "/nonexistent", "HTTP_PROXY": closed, "HTTPS_PROXY": closed,
            "http_proxy": closed, "https_proxy": closed, "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost"}


@pytest.fixture(scope="module")
def ec2(moto):
    return boto3.client("ec2", region_name=REGION, endpoint_url=moto, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def inventory(tmp_path_factory, moto):
    """inventories/prod as committed (aws_ec2.yml plus the endpoint, no DigitalOcean file)."""
    return inventory_copy(tmp_path_factory.mktemp("inv"), "prod", "aws_ec2.yml", moto)


def playbook(name: str, inventory, env: dict, extra: dict, log: str):
    return run([tool("ansible-playbook"), "-i", inventory, REPO / "playbooks" / name,
                "-e", json.dumps(extra)], env=env, log_name=f"pytest-{log}")


def changed(result) -> int:
    return sum(int(n) for n in re.findall(r"changed=(\d+)", result.stdout))


def said(result) -> str:
    return " ".join((result.stdout + result.stderr).split())


def instances(ec2, project="flaskstack") -> dict[str, dict]:
    found = {}
    for reservation in ec2.describe_instances(Filters=[
            {"Name": "tag:project", "Values": [project]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"]:
        for i in reservation["Instances"]:
            found[{t["Key"]: t["Value"] for t in i["Tags"]}["Name"]] = i
    return found


@pytest.fixture(scope="module")
def provisioned(inventory, aws_env, ec2):
    first = playbook("provision.yml", inventory, aws_env, SETTINGS, "provision")
    assert first.returncode == 0, tail(first.stdout + first.stderr, 60)
    again = playbook("provision.yml", inventory, aws_env, SETTINGS, "provision-again")
    assert again.returncode == 0, tail(again.stdout + again.stderr, 60)
    return {"first": first, "again": again}


def test_the_fleet_is_created_as_declared(provisioned, ec2):
    made = instances(ec2)
    assert sorted(made) == sorted(h["name"] for h in FLEET)
    for host in FLEET:
        i = made[host["name"]]
        tags = {t["Key"]: t["Value"] for t in i["Tags"]}
        assert tags["project"] == "flaskstack" and tags["env"] == "prod" and tags["role"] == ",".join(host["groups"])
        assert i["ImageId"] == NEWEST_OFFICIAL, "not the newest official Debian image"
        assert i["InstanceType"] == host["size"]
        assert i["KeyName"] == "flaskstack"
        assert i["MetadataOptions"]["HttpTokens"] == "required"
        groups = {g["GroupName"] for g in i["SecurityGroups"]}
        assert groups == {f"flaskstack-{g}" for g in host["groups"]}
        volume_id = i["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
        assert ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]["Encrypted"] is True
    key = ec2.describe_key_pairs(KeyNames=["flaskstack"])["KeyPairs"][0]
    assert key["KeyName"] == "flaskstack"


def test_firewalls_open_only_what_each_group_needs(provisioned, ec2):
    groups = {g["GroupName"]: g for g in ec2.describe_security_groups(
        Filters=[{"Name": "tag:project", "Values": ["flaskstack"]}])["SecurityGroups"]}
    ids = {name: g["GroupId"] for name, g in groups.items()}

    def rules(name):
        out = set()
        for p in groups[name]["IpPermissions"]:
            for r in p.get("IpRanges", []):
                out.add((p["FromPort"], r["CidrIp"]))
            for r in p.get("UserIdGroupPairs", []):
                out.add((p["FromPort"], r["GroupId"]))
        return out

    admin = "198.51.100.7/32"
    assert rules("flaskstack-lb") == {(22, admin), (80, "0.0.0.0/0"), (443, "0.0.0.0/0")}
    assert rules("flaskstack-web") == {(22, admin), (8080, ids["flaskstack-lb"])}
    assert rules("flaskstack-db") == {(22, admin), (5432, ids["flaskstack-web"])}
    assert rules("flaskstack-cache") == {(22, admin), (6379, ids["flaskstack-web"])}


def test_a_second_run_changes_nothing(provisioned):
    assert changed(provisioned["again"]) == 0, tail(provisioned["again"].stdout, 40)


def test_the_committed_inventory_groups_what_was_made(provisioned, inventory, aws_env, ec2):
    listing = json.loads(run([tool("ansible-inventory"), "-i", inventory / "aws_ec2.yml", "--list"],
                             env=aws_env, log_name="pytest-provision-inventory").stdout)
    assert listing["lb"]["hosts"] == ["lb-1"]
    assert sorted(listing["web"]["hosts"]) == ["web-1", "web-2"]
    assert listing["db"]["hosts"] == ["db-1"] and listing["cache"]["hosts"] == ["cache-1"]
    made = instances(ec2)
    for name, i in made.items():
        address = listing["_meta"]["hostvars"][name]["flaskstack_private_ip"]
        assert address.get("__ansible_unsafe", address) == i["PrivateIpAddress"]


def test_adding_a_host_creates_just_that_host_and_removing_one_needs_confirmation(provisioned, inventory,
                                                                                  aws_env, ec2):
    before = instances(ec2)
    grown = {**SETTINGS, "cloud_hosts": FLEET + [{"name": "web-3", "groups": ["web"], "size": "t3.small"}]}
    result = playbook("provision.yml", inventory, aws_env, grown, "provision-grow")
    assert result.returncode == 0, tail(result.stdout + result.stderr, 40)
    after = instances(ec2)
    assert sorted(after) == sorted([*before, "web-3"])
    assert all(after[n]["InstanceId"] == before[n]["InstanceId"] for n in before)
    # web-3 no longer declared: refused, then removed once confirmed
    refused = playbook("provision.yml", inventory, aws_env, SETTINGS, "provision-shrink-refused")
    assert refused.returncode != 0 and "['web-3'] run in flaskstack but are no longer in cloud_hosts" in said(refused)
    assert "web-3" in instances(ec2)
    removed = playbook("provision.yml", inventory, aws_env, {**SETTINGS, "cloud_remove_hosts": ["web-3"]},
                       "provision-shrink")
    assert removed.returncode == 0, tail(removed.stdout + removed.stderr, 40)
    assert sorted(instances(ec2)) == sorted(before)


BAD = {
    "world-ssh": ({"cloud_admin_cidr": "0.0.0.0/0"}, "cloud_admin_cidr: 0.0.0.0/0 opens SSH to the whole internet"),
    "duplicate-name": ({"cloud_hosts": FLEET + [FLEET[1]]}, "cloud_hosts: duplicate host names ['web-1']"),
    "no-group": ({"cloud_hosts": [{"name": "lonely", "groups": [], "size": "t3.small"}]},
                 "cloud_hosts: ['lonely'] in no group"),
    "unknown-group": ({"cloud_hosts": [{"name": "x", "groups": ["webs"], "size": "t3.small"}]},
                      "cloud_hosts: unknown groups ['webs']"),
    "bad-key": ({"cloud_ssh_public_key": "not a key"}, "cloud_ssh_public_key: not an OpenSSH public key"),
    "unknown-provider": ({"cloud_provider": "gcp"}, "cloud_provider"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_refused_before_any_api_call(case, tmp_path, inventory, aws_env):
    bad, expected = BAD[case]
    # an endpoint nobody listens on: reaching the API would fail differently
    env = {**aws_env, "AWS_URL": f"http://127.0.0.1:{free_port()}"}
    result = playbook("provision.yml", inventory, env, {**SETTINGS, **bad}, f"provision-bad-{case}")
    assert result.returncode != 0
    assert expected in said(result), tail(result.stdout + result.stderr, 30)


def test_missing_credentials_are_named(inventory, aws_env):
    env = {**aws_env, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_PROFILE": ""}
    result = playbook("provision.yml", inventory, env, SETTINGS, "provision-no-credentials")
    assert result.returncode != 0 and "No AWS credentials" in said(result)


def test_an_instance_type_the_api_rejects_is_reported_with_its_message(provisioned, inventory, aws_env, ec2):
    odd = {**SETTINGS, "cloud_hosts": FLEET + [{"name": "odd-1", "groups": ["web"], "size": "t3.gigantic"}]}
    result = playbook("provision.yml", inventory, aws_env, odd, "provision-bad-size")
    assert result.returncode != 0
    assert "t3.gigantic" in said(result) and "Traceback" not in result.stdout
    assert "odd-1" not in instances(ec2)


def test_a_given_subnet_is_used_and_left_in_place(inventory, aws_env, ec2):
    """cloud_aws_subnet_id: hosts go into an existing network, which teardown does not remove."""
    vpc = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.50.1.0/24")["Subnet"]["SubnetId"]
    shared = {**SETTINGS, "cloud_project": "flaskstack-shared", "cloud_aws_subnet_id": subnet,
              "cloud_hosts": [{"name": "aio-1", "groups": ["web", "db", "cache"], "size": "t3.small"}]}
    made = playbook("provision.yml", inventory, aws_env, shared, "provision-given-subnet")
    assert made.returncode == 0, tail(made.stdout + made.stderr, 40)
    host = instances(ec2, "flaskstack-shared")["aio-1"]
    assert host["SubnetId"] == subnet and host["VpcId"] == vpc
    assert ec2.describe_vpcs(Filters=[{"Name": "tag:project", "Values": ["flaskstack-shared"]}])["Vpcs"] == []
    gone = playbook("teardown.yml", inventory, aws_env, {"cloud_project": "flaskstack-shared",
                                                         "cloud_teardown_confirm": "flaskstack-shared"},
                    "teardown-given-subnet")
    assert gone.returncode == 0, tail(gone.stdout + gone.stderr, 40)
    assert instances(ec2, "flaskstack-shared") == {}
    assert ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"] == vpc  # left in place


def test_teardown_needs_confirmation_then_removes_everything(provisioned, inventory, aws_env, ec2):
    refused = playbook("teardown.yml", inventory, aws_env, {}, "teardown-refused")
    assert refused.returncode != 0 and "confirm with -e cloud_teardown_confirm=flaskstack" in said(refused)
    assert instances(ec2)
    done = playbook("teardown.yml", inventory, aws_env, {"cloud_teardown_confirm": "flaskstack"}, "teardown")
    assert done.returncode == 0, tail(done.stdout + done.stderr, 40)
    assert instances(ec2) == {}
    tagged = [{"Name": "tag:project", "Values": ["flaskstack"]}]
    assert ec2.describe_security_groups(Filters=tagged)["SecurityGroups"] == []
    assert ec2.describe_vpcs(Filters=tagged)["Vpcs"] == []
    assert ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": ["flaskstack"]}])["KeyPairs"] == []
    again = playbook("teardown.yml", inventory, aws_env, {"cloud_teardown_confirm": "flaskstack"}, "teardown-again")
    assert again.returncode == 0 and changed(again) == 0, tail(again.stdout, 40)
    listing = json.loads(run([tool("ansible-inventory"), "-i", inventory / "aws_ec2.yml", "--list"],
                             env=aws_env, log_name="pytest-teardown-inventory").stdout)
    assert listing["_meta"]["hostvars"] == {}
