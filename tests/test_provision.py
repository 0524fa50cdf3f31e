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
import yaml

from conftest import REPO, closed_proxies, run, tail, tool
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
ZONE = "example.net"
DNS_NAMES = ["example.net", "www.example.net"]
SETTINGS = {"cloud_ssh_public_key": KEY, "cloud_admin_cidr": "198.51.100.7/32", "cloud_wait_for_ssh": False,
            "cloud_hosts": FLEET, "cloud_dns_zone": ZONE, "cloud_dns_names": DNS_NAMES}
REGION = "eu-central-1"
ACCOUNT = "123456789012"  # moto's default account
INVENTORY_KEYS = {"name", "groups", "size", "public_ip", "private_ip", "fixed_ip"}
# A play that runs the role as provision.yml does and writes what it set for the
# lead's main.yml and up.yml: cloud_inventory and __cloud_created_names.
DUMP_PLAY = """
- name: Provision and keep what the role set
  hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: flaskstack.deploy.cloud
  post_tasks:
    - name: Write cloud_inventory and __cloud_created_names
      ansible.builtin.copy:
        content: "{{ {'inventory': cloud_inventory, 'created': __cloud_created_names | default(None)} | to_json }}"
        dest: "{{ dump_to }}"
        mode: "0600"
      changed_when: false  # the test's own file, not a change the role made
"""


# moto_server, with what differs from AWS where the role depends on it put right:
# - DescribeTags names an Elastic IP's resource type "elastic-ip" (moto says
#   "vpc-elastic-ip", so amazon.aws.ec2_eip, which filters on it, re-tags the
#   address on every run): https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeTags.html
MOTO_AS_AWS = """
import sys
from moto.ec2 import utils
utils.EC2_PREFIX_TO_RESOURCE["eipalloc"] = "elastic-ip"
from moto.server import main
main(sys.argv[1:])
"""


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
    server = subprocess.Popen([tool("python"), "-c", MOTO_AS_AWS, "-H", "127.0.0.1", "-p", str(port)], env=env,
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
    # AWS_URL: the endpoint of the amazon.aws modules; AWS_ENDPOINT_URL: that of
    # every other client botocore makes - the STS client of its web identity
    # credential provider - see https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html.
    # No instance metadata service (169.254.169.254) is asked either.
    return {"AWS_URL": moto, "AWS_ENDPOINT_URL": moto, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION, "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_CONFIG_FILE": "/nonexistent", **closed_proxies(free_port())}


@pytest.fixture(scope="module")
def ec2(moto):
    return boto3.client("ec2", region_name=REGION, endpoint_url=moto, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def client(moto, service: str):
    return boto3.client(service, region_name=REGION, endpoint_url=moto, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def route53(moto):
    return client(moto, "route53")


@pytest.fixture(scope="module")
def zone(route53):
    """The public hosted zone of SETTINGS, made in moto's account as it would be by hand."""
    return route53.create_hosted_zone(Name=ZONE, CallerReference="flaskstack-tests")["HostedZone"]["Id"]


def a_records(route53, zone_id) -> dict[str, list[str]]:
    return {r["Name"]: sorted(v["Value"] for v in r["ResourceRecords"])
            for r in route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"] if r["Type"] == "A"}


def addresses(ec2, project="flaskstack") -> dict[str, dict]:
    """The project's Elastic IPs by their Name tag."""
    found = ec2.describe_addresses(Filters=[{"Name": "tag:project", "Values": [project]}])["Addresses"]
    return {{t["Key"]: t["Value"] for t in a.get("Tags", [])}.get("Name", ""): a for a in found}


@pytest.fixture(scope="module")
def dump_play(tmp_path_factory):
    path = tmp_path_factory.mktemp("plays") / "provision_dump.yml"
    path.write_text(DUMP_PLAY)
    return path


def provision_dump(dump_play, inventory, env: dict, extra: dict, log: str):
    """Run the role as provision.yml does; return the result and what it set."""
    out = dump_play.parent / f"{log}.json"
    out.unlink(missing_ok=True)
    result = run([tool("ansible-playbook"), "-i", inventory, dump_play, "-e", json.dumps({**extra, "dump_to": str(out)})],
                 env=env, log_name=f"pytest-{log}")
    return result, (json.loads(out.read_text()) if out.exists() else None)


@pytest.fixture(scope="module")
def inventory(tmp_path_factory, moto):
    """inventories/prod as committed (aws_ec2.yml plus the endpoint, no DigitalOcean file)."""
    return inventory_copy(tmp_path_factory.mktemp("inv"), "prod", "aws_ec2.yml", moto)


def project_inventory(tmp_path, moto_url: str, project: str):
    """inventories/prod's aws_ec2.yml selecting another project (what that environment's inventory does)."""
    inventory = inventory_copy(tmp_path, "prod", "aws_ec2.yml", moto_url)
    config = yaml.safe_load((inventory / "aws_ec2.yml").read_text())
    config["filters"]["tag:project"] = project
    (inventory / "aws_ec2.yml").write_text(yaml.safe_dump(config))
    return inventory


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
def provisioned(inventory, aws_env, ec2, zone, dump_play):
    first = playbook("provision.yml", inventory, aws_env, SETTINGS, "provision")
    assert first.returncode == 0, tail(first.stdout + first.stderr, 60)
    again, set_again = provision_dump(dump_play, inventory, aws_env, SETTINGS, "provision-again")
    assert again.returncode == 0, tail(again.stdout + again.stderr, 60)
    return {"first": first, "again": again, "set_again": set_again}


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


def test_the_aws_identity_in_use_is_reported(provisioned):
    assert f"AWS identity: account {ACCOUNT}, arn:aws:sts::{ACCOUNT}:user/moto" in said(provisioned["first"])


def test_the_tls_host_gets_a_tagged_fixed_address_that_the_inventory_lists(provisioned, ec2):
    eips = addresses(ec2)
    assert sorted(eips) == ["lb-1"], eips  # the balancer only: TLS ends there
    eip = eips["lb-1"]
    tags = {t["Key"]: t["Value"] for t in eip["Tags"]}
    assert tags["project"] == "flaskstack" and tags["env"] == "prod" and eip["Domain"] == "vpc"
    lb = instances(ec2)["lb-1"]
    assert eip["InstanceId"] == lb["InstanceId"] and lb["PublicIpAddress"] == eip["PublicIp"]
    listed = {h["name"]: h for h in provisioned["set_again"]["inventory"]}
    assert sorted(listed) == sorted(h["name"] for h in FLEET)
    assert all(set(h) == INVENTORY_KEYS for h in listed.values()), listed
    assert listed["lb-1"]["fixed_ip"] == listed["lb-1"]["public_ip"] == eip["PublicIp"]
    assert {n: h["fixed_ip"] for n, h in listed.items() if n != "lb-1"} == {n: "" for n in listed if n != "lb-1"}


def test_no_host_is_named_created_when_none_was(provisioned):
    assert provisioned["set_again"]["created"] == []


def test_the_dns_names_point_at_the_fixed_address(provisioned, ec2, route53, zone):
    eip = addresses(ec2)["lb-1"]["PublicIp"]
    assert a_records(route53, zone) == {"example.net.": [eip], "www.example.net.": [eip]}
    ttls = {r["Name"]: r["TTL"] for r in route53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
            if r["Type"] == "A"}
    assert ttls == {"example.net.": 300, "www.example.net.": 300}


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


def test_a_replaced_host_gets_its_fixed_address_back(provisioned, inventory, aws_env, ec2, dump_play):
    before = instances(ec2)
    eip = addresses(ec2)["lb-1"]
    ec2.terminate_instances(InstanceIds=[before["lb-1"]["InstanceId"]])
    # AWS disassociates an Elastic IP from an instance that terminates (it stays
    # allocated); moto keeps the association, so undo it as AWS would:
    # https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/terminating-instances.html
    ec2.disassociate_address(AssociationId=eip["AssociationId"])
    result, made = provision_dump(dump_play, inventory, aws_env, SETTINGS, "provision-replace")
    assert result.returncode == 0, tail(result.stdout + result.stderr, 40)
    after = instances(ec2)
    assert after["lb-1"]["InstanceId"] != before["lb-1"]["InstanceId"]
    assert all(after[n]["InstanceId"] == before[n]["InstanceId"] for n in before if n != "lb-1")
    assert addresses(ec2)["lb-1"]["AllocationId"] == eip["AllocationId"]
    assert after["lb-1"]["PublicIpAddress"] == eip["PublicIp"]
    assert made["created"] == ["lb-1"]
    lb = next(h for h in made["inventory"] if h["name"] == "lb-1")
    assert lb["fixed_ip"] == lb["public_ip"] == eip["PublicIp"]


def test_several_balancers_share_one_record_set(provisioned, inventory, aws_env, ec2, route53, zone, dump_play):
    two = {**SETTINGS, "cloud_hosts": FLEET + [{"name": "lb-2", "groups": ["lb"], "size": "t3.small"}]}
    result, made = provision_dump(dump_play, inventory, aws_env, two, "provision-two-balancers")
    assert result.returncode == 0, tail(result.stdout + result.stderr, 40)
    assert made["created"] == ["lb-2"]
    eips = addresses(ec2)
    both = sorted([eips["lb-1"]["PublicIp"], eips["lb-2"]["PublicIp"]])
    assert a_records(route53, zone) == {"example.net.": both, "www.example.net.": both}
    assert sorted(h["fixed_ip"] for h in made["inventory"] if h["fixed_ip"]) == both
    one = playbook("provision.yml", inventory, aws_env, {**SETTINGS, "cloud_remove_hosts": ["lb-2"]},
                   "provision-one-balancer")
    assert one.returncode == 0, tail(one.stdout + one.stderr, 40)
    lb1 = [eips["lb-1"]["PublicIp"]]
    assert a_records(route53, zone) == {"example.net.": lb1, "www.example.net.": lb1}


def test_a_dns_zone_missing_from_the_account_is_refused_before_anything_is_created(tmp_path, moto, aws_env, ec2, zone):
    inventory = project_inventory(tmp_path, moto, "flaskstack-nozone")
    elsewhere = {**SETTINGS, "cloud_project": "flaskstack-nozone", "cloud_dns_zone": "example.org",
                 "cloud_dns_names": ["www.example.org"],
                 "cloud_hosts": [{"name": "aio-1", "groups": ["web", "db", "cache"], "size": "t3.small"}]}
    result = playbook("provision.yml", inventory, aws_env, elsewhere, "provision-no-zone")
    assert result.returncode != 0
    assert "cloud_dns_zone: no public Route 53 hosted zone named 'example.org'" in said(result), tail(result.stdout, 30)
    tagged = [{"Name": "tag:project", "Values": ["flaskstack-nozone"]}]
    assert instances(ec2, "flaskstack-nozone") == {}
    assert ec2.describe_vpcs(Filters=tagged)["Vpcs"] == []
    assert ec2.describe_security_groups(Filters=tagged)["SecurityGroups"] == []
    assert ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": ["flaskstack-nozone"]}])["KeyPairs"] == []


BAD = {
    # the committed aws_ec2.yml reads eu-central-1 and tag:project=flaskstack: hosts made elsewhere
    # would never be in the inventory site.yml runs on
    "inventory-region": ({"cloud_region": "eu-west-1"},
                         "aws_ec2.yml: reads regions ['eu-central-1'] but cloud_region is 'eu-west-1'"),
    "inventory-project": ({"cloud_project": "flaskstack-other"},
                          "aws_ec2.yml: selects tag:project 'flaskstack' but cloud_project is 'flaskstack-other'"),
    "world-ssh": ({"cloud_admin_cidr": "0.0.0.0/0"}, "cloud_admin_cidr: 0.0.0.0/0 opens SSH to the whole internet"),
    "duplicate-name": ({"cloud_hosts": FLEET + [FLEET[1]]}, "cloud_hosts: duplicate host names ['web-1']"),
    "no-group": ({"cloud_hosts": [{"name": "lonely", "groups": [], "size": "t3.small"}]},
                 "cloud_hosts: ['lonely'] in no group"),
    "unknown-group": ({"cloud_hosts": [{"name": "x", "groups": ["webs"], "size": "t3.small"}]},
                      "cloud_hosts: unknown groups ['webs']"),
    "bad-key": ({"cloud_ssh_public_key": "not a key"}, "cloud_ssh_public_key: not an OpenSSH public key"),
    "unknown-provider": ({"cloud_provider": "gcp"}, "cloud_provider"),
    "region-not-aws": ({"cloud_region": "fra1"}, "cloud_region: 'fra1' is not an AWS region name"),
    "size-not-instance-type": ({"cloud_hosts": FLEET + [{"name": "do-1", "groups": ["web"], "size": "s-1vcpu-2gb"}]},
                               "cloud_hosts: sizes ['s-1vcpu-2gb'] (of ['do-1']) are not EC2 instance types"),
    "dns-name-outside-zone": ({"cloud_dns_names": ["shop.example.net", "www.notexample.net"]},
                              "cloud_dns_names: www.notexample.net not inside cloud_dns_zone 'example.net'"),
    "dns-names-without-tls-host": ({"cloud_hosts": [{"name": "db-9", "groups": ["db"], "size": "t3.small"}]},
                                   "cloud_dns_names: no host where TLS ends"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_refused_before_any_api_call(case, tmp_path, inventory, aws_env):
    bad, expected = BAD[case]
    # an endpoint nobody listens on: reaching the API would fail differently
    env = {**aws_env, "AWS_URL": f"http://127.0.0.1:{free_port()}"}
    result = playbook("provision.yml", inventory, env, {**SETTINGS, **bad}, f"provision-bad-{case}")
    assert result.returncode != 0
    assert expected in said(result), tail(result.stdout + result.stderr, 30)


def without_keys(aws_env: dict, **extra) -> dict:
    return {**{k: v for k, v in aws_env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}, **extra}


def test_missing_credentials_are_named_before_any_other_call(inventory, aws_env):
    # nothing listens at the endpoint: a call made after the check would fail differently
    env = without_keys(aws_env, AWS_URL=f"http://127.0.0.1:{free_port()}")
    result = playbook("provision.yml", inventory, env, SETTINGS, "provision-no-credentials")
    assert result.returncode != 0
    message = said(result)
    assert "No AWS credentials: looked at AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE" in message, message[-800:]
    for source in ("AWS_CONFIG_FILE", "SSO", "credential_process", "AWS_WEB_IDENTITY_TOKEN_FILE", "instance profile"):
        assert source in message


EMPTY_TEARDOWN = {"cloud_project": "flaskstack-ci", "cloud_teardown_confirm": "flaskstack-ci"}


def test_a_config_profile_with_credential_process_is_used(tmp_path, inventory, aws_env, moto):
    """The default profile of AWS_CONFIG_FILE runs a program that prints the keys, as the SDKs document:
    https://docs.aws.amazon.com/sdkref/latest/guide/feature-process-credentials.html"""
    iam = client(moto, "iam")
    iam.create_user(UserName="ci-process")
    key = iam.create_access_key(UserName="ci-process")["AccessKey"]
    program = tmp_path / "aws-credentials"
    program.write_text("#!/bin/sh\nprintf '%s\\n' '" + json.dumps(
        {"Version": 1, "AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}) + "'\n")
    program.chmod(0o700)
    config = tmp_path / "config"
    config.write_text(f"[default]\nregion = {REGION}\ncredential_process = {program}\n")
    result = playbook("teardown.yml", inventory, without_keys(aws_env, AWS_CONFIG_FILE=str(config)), EMPTY_TEARDOWN,
                      "teardown-credential-process")
    assert result.returncode == 0, tail(result.stdout + result.stderr, 30)
    # moto's GetCallerIdentity names the IAM user whose key signed the call
    assert f"AWS identity: account {ACCOUNT}, arn:aws:iam::{ACCOUNT}:user/ci-process" in said(result)


def test_a_web_identity_token_is_exchanged_for_a_role(tmp_path, inventory, aws_env):
    """What CI runners use: the SDK sends the token file to STS AssumeRoleWithWebIdentity (moto's, through
    AWS_ENDPOINT_URL; moto takes any token, AWS checks it against the role's OIDC provider):
    https://docs.aws.amazon.com/sdkref/latest/guide/feature-assume-role-credentials.html
    https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html"""
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmZsYXNrc3RhY2sifQ.c2lnbmF0dXJl")
    env = without_keys(aws_env, AWS_WEB_IDENTITY_TOKEN_FILE=str(token),
                       AWS_ROLE_ARN=f"arn:aws:iam::{ACCOUNT}:role/ci-deploy", AWS_ROLE_SESSION_NAME="ci-run")
    result = playbook("teardown.yml", inventory, env, EMPTY_TEARDOWN, "teardown-web-identity")
    assert result.returncode == 0, tail(result.stdout + result.stderr, 30)
    assert f"AWS identity: account {ACCOUNT}, arn:aws:sts::{ACCOUNT}:assumed-role/ci-deploy/ci-run" in said(result)


def test_an_instance_type_the_api_rejects_is_reported_with_its_message(provisioned, inventory, aws_env, ec2):
    odd = {**SETTINGS, "cloud_hosts": FLEET + [{"name": "odd-1", "groups": ["web"], "size": "t3.gigantic"}]}
    result = playbook("provision.yml", inventory, aws_env, odd, "provision-bad-size")
    assert result.returncode != 0
    assert "t3.gigantic" in said(result) and "Traceback" not in result.stdout
    assert "odd-1" not in instances(ec2)


def test_a_given_subnet_is_used_and_left_in_place(tmp_path, moto, aws_env, ec2):
    """cloud_aws_subnet_id: hosts go into an existing network, which teardown does not remove."""
    inventory = project_inventory(tmp_path, moto, "flaskstack-shared")
    vpc = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.50.1.0/24")["Subnet"]["SubnetId"]
    shared = {**SETTINGS, "cloud_project": "flaskstack-shared", "cloud_aws_subnet_id": subnet,
              "cloud_dns_zone": "", "cloud_dns_names": [],
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
    # its groups are found in the given subnet's VPC (where its instances were)
    assert ec2.describe_security_groups(Filters=[{"Name": "tag:project", "Values": ["flaskstack-shared"]}])[
        "SecurityGroups"] == []
    assert ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"] == vpc  # left in place


@pytest.fixture(scope="module")
def torn_down(provisioned, inventory, aws_env, ec2, route53, zone):
    """Teardown of the fleet, beside what is not the project's: groups of the same names in the default VPC,
    another environment's Elastic IP, a record of another name in the zone."""
    refused = playbook("teardown.yml", inventory, aws_env, {}, "teardown-refused")
    assert instances(ec2)
    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    foreign_groups = [ec2.create_security_group(GroupName=f"flaskstack-{g}", Description="not the project's",
                                                VpcId=default_vpc)["GroupId"] for g in ("lb", "web", "db", "cache")]
    foreign_eip = ec2.allocate_address(Domain="vpc", TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": [
        {"Key": "project", "Value": "flaskstack-staging"}, {"Key": "Name", "Value": "lb-1"}]}])["AllocationId"]
    route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "UPSERT",
        "ResourceRecordSet": {"Name": "legacy.example.net", "Type": "A", "TTL": 60,
                              "ResourceRecords": [{"Value": "192.0.2.10"}]}}]})
    made = {"addresses": sorted(addresses(ec2)), "records": a_records(route53, zone)}
    confirmed = {"cloud_teardown_confirm": "flaskstack", "cloud_dns_zone": ZONE,
                 "cloud_dns_names": DNS_NAMES + ["legacy.example.net"]}
    done = playbook("teardown.yml", inventory, aws_env, confirmed, "teardown")
    assert done.returncode == 0, tail(done.stdout + done.stderr, 40)
    again = playbook("teardown.yml", inventory, aws_env, confirmed, "teardown-again")
    return {"refused": refused, "done": done, "again": again, "foreign_groups": foreign_groups,
            "foreign_eip": foreign_eip, "made": made}


def test_teardown_needs_confirmation_then_removes_everything(torn_down, inventory, aws_env, ec2):
    refused = torn_down["refused"]
    assert refused.returncode != 0 and "confirm with -e cloud_teardown_confirm=flaskstack" in said(refused)
    assert instances(ec2) == {}
    tagged = [{"Name": "tag:project", "Values": ["flaskstack"]}]
    assert ec2.describe_security_groups(Filters=tagged)["SecurityGroups"] == []
    assert ec2.describe_vpcs(Filters=tagged)["Vpcs"] == []
    assert ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": ["flaskstack"]}])["KeyPairs"] == []
    again = torn_down["again"]
    assert again.returncode == 0 and changed(again) == 0, tail(again.stdout, 40)
    listing = json.loads(run([tool("ansible-inventory"), "-i", inventory / "aws_ec2.yml", "--list"],
                             env=aws_env, log_name="pytest-teardown-inventory").stdout)
    assert listing["_meta"]["hostvars"] == {}


def test_teardown_spares_same_named_security_groups_of_another_vpc(torn_down, ec2):
    left = ec2.describe_security_groups(GroupIds=torn_down["foreign_groups"])["SecurityGroups"]
    assert sorted(g["GroupName"] for g in left) == ["flaskstack-cache", "flaskstack-db", "flaskstack-lb", "flaskstack-web"]


def test_teardown_releases_the_fixed_addresses_and_removes_only_its_records(torn_down, ec2, route53, zone):
    # what there was: lb-2's address stays allocated after that host was removed
    assert torn_down["made"]["addresses"] == ["lb-1", "lb-2"]
    assert sorted(torn_down["made"]["records"]) == ["example.net.", "legacy.example.net.", "www.example.net."]
    assert addresses(ec2) == {}
    assert [a["AllocationId"] for a in ec2.describe_addresses()["Addresses"]] == [torn_down["foreign_eip"]]
    # the zone stays, and the record that pointed elsewhere
    assert route53.get_hosted_zone(Id=zone)["HostedZone"]["Name"] == "example.net."
    assert a_records(route53, zone) == {"legacy.example.net.": ["192.0.2.10"]}
