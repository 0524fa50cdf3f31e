"""The production and staging inventories parse and group hosts as documented.

The EC2 and DigitalOcean inventory plugins run for real against small fake
APIs on loopback (the configuration files are used as committed, with only the
endpoint added; the credentials come from the environment, DO_API_TOKEN for
DigitalOcean, as in real use), so the plugin options, tag filters,
keyed groups, composed variables and the group_vars wiring between app,
database and cache hosts are all exercised offline."""

from __future__ import annotations

import json
import shutil
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

import pytest
import yaml

from conftest import REPO, run, tool

# name -> (private ip, public ip, roles, project tag)
MACHINES = {
    "lb-1": ("10.0.0.5", "203.0.113.5", ["lb"], "flaskstack"),
    "web-1": ("10.0.0.11", "203.0.113.11", ["web"], "flaskstack"),
    "web-2": ("10.0.0.12", "203.0.113.12", ["web"], "flaskstack"),
    "db-1": ("10.0.0.21", "203.0.113.21", ["db"], "flaskstack"),
    "cache-1": ("10.0.0.31", "203.0.113.31", ["cache"], "flaskstack"),
    "staging-aio": ("10.1.0.5", "203.0.113.50", ["web", "db", "cache"], "flaskstack-staging"),
    "unrelated": ("10.9.0.9", "203.0.113.99", ["web"], "other-project"),
}


def _ec2_xml(filters: dict[str, str]) -> str:
    items = []
    for i, (name, (private, public, roles, project)) in enumerate(sorted(MACHINES.items())):
        if filters.get("tag:project", project) != project:
            continue
        tags = {"Name": name, "role": ",".join(roles), "project": project}
        tagset = "".join(f"<item><key>{k}</key><value>{escape(v)}</value></item>" for k, v in tags.items())
        items.append(f"""<item><reservationId>r-{i}</reservationId><ownerId>123456789012</ownerId><groupSet/>
<instancesSet><item><instanceId>i-{i:017x}</instanceId><imageId>ami-1</imageId>
<instanceState><code>16</code><name>running</name></instanceState><instanceType>t3.small</instanceType>
<placement><availabilityZone>eu-central-1a</availabilityZone></placement>
<privateIpAddress>{private}</privateIpAddress><ipAddress>{public}</ipAddress>
<tagSet>{tagset}</tagSet></item></instancesSet></item>""")
    return ('<?xml version="1.0" encoding="UTF-8"?><DescribeInstancesResponse '
            'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>req</requestId>'
            f'<reservationSet>{"".join(items)}</reservationSet></DescribeInstancesResponse>')


DO_TOKEN = "fake-do-token"  # DO_API_TOKEN of every run below (see ansible_json)


def _droplets(without_private=()) -> dict:
    droplets = []
    for i, (name, (private, public, roles, project)) in enumerate(sorted(MACHINES.items())):
        droplets.append({
            "id": 1000 + i, "name": name, "size_slug": "s-1vcpu-2gb", "region": {"slug": "fra1"},
            "tags": [project, *roles],
            "networks": {"v4": [{"ip_address": public, "type": "public"}] + (
                [] if name in without_private else [{"ip_address": private, "type": "private"}]), "v6": []},
        })
    return {"droplets": droplets, "links": {}, "meta": {"total": len(droplets)}}


class FakeCloud(BaseHTTPRequestHandler):
    without_private: tuple = ()  # droplets shown with no VPC address (a test sets it for its run)
    droplet_requests: list = []  # the Authorization header of each GET /v2/droplets

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(self, body: str, ctype: str, status: int = 200):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # DigitalOcean: GET /v2/droplets
        FakeCloud.droplet_requests.append(self.headers["Authorization"])
        # a missing or wrong bearer token gets 401 and this body
        # (docs.digitalocean.com/reference/api/api-reference/#section/Authentication)
        if self.headers["Authorization"] != f"Bearer {DO_TOKEN}":
            self._send(json.dumps({"id": "Unauthorized", "message": "Unable to authenticate you"}), "application/json", 401)
        elif not self.path.startswith("/v2/droplets"):
            self._send(json.dumps({"id": "not_found", "message": "The resource you were accessing could not be found."}),
                       "application/json", 404)
        else:
            self._send(json.dumps(_droplets(FakeCloud.without_private)), "application/json")

    def do_POST(self):  # EC2 query API: Action=DescribeInstances
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        assert form["Action"] == ["DescribeInstances"], form
        filters = {form[f"Filter.{n}.Name"][0]: form[f"Filter.{n}.Value.1"][0]
                   for n in range(1, 10) if f"Filter.{n}.Name" in form}
        self._send(_ec2_xml(filters), "text/xml")


@pytest.fixture(scope="module")
def fake_cloud():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeCloud)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


ENDPOINTS = {
    "aws_ec2.yml": lambda url: {"endpoint_url": url, "access_key": "AKIAFAKEFAKEFAKE", "secret_key": "fake"},
    "digitalocean.yml": lambda url: {"baseurl": f"{url}/v2"},  # the token: DO_API_TOKEN in the environment
}
VAULT = {"vault_flask_app_secret_key": "x" * 40, "vault_postgresql_app_password": "p@ss/word with space",
         "vault_redis_app_password": "r" * 32}


def inventory_copy(tmp_path, env: str, source: str, url: str):
    """The committed plugin file (plus endpoint) beside the inventory's group_vars."""
    work = tmp_path / env
    work.mkdir()
    shutil.copytree(REPO / "inventories" / env / "group_vars", work / "group_vars", symlinks=False)
    config = yaml.safe_load((REPO / "inventories" / env / source).read_text())
    config.update(ENDPOINTS[source](url))
    (work / source).write_text(yaml.safe_dump(config))
    return work


def ansible_json(argv, env=None, **kwargs):
    result = run(argv, env={"ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true",
                            "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true", "DO_API_TOKEN": DO_TOKEN,
                            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent",
                            **(env or {})},
                 **kwargs)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


@pytest.mark.parametrize("source", sorted(ENDPOINTS))
def test_prod_inventory_groups_hosts_by_tag(fake_cloud, tmp_path, source):
    inv = inventory_copy(tmp_path, "prod", source, fake_cloud)
    graph = ansible_json([tool("ansible-inventory"), "-i", inv, "--graph"]).stdout
    listing = json.loads(ansible_json([tool("ansible-inventory"), "-i", inv, "--list"]).stdout)
    assert sorted(listing["web"]["hosts"]) == ["web-1", "web-2"], graph
    assert listing["db"]["hosts"] == ["db-1"] and listing["cache"]["hosts"] == ["cache-1"], graph
    assert listing["lb"]["hosts"] == ["lb-1"], graph
    assert "unrelated" not in graph and "staging-aio" not in graph
    web = {k: v.get("__ansible_unsafe", v) if isinstance(v, dict) else v
           for k, v in listing["_meta"]["hostvars"]["web-1"].items()}
    assert web["ansible_host"] == "203.0.113.11" and web["flaskstack_private_ip"] == "10.0.0.11"


@pytest.mark.parametrize("source", sorted(ENDPOINTS))
def test_staging_inventory_takes_only_staging_hosts(fake_cloud, tmp_path, source):
    inv = inventory_copy(tmp_path, "staging", source, fake_cloud)
    listing = json.loads(ansible_json([tool("ansible-inventory"), "-i", inv, "--list"]).stdout)
    for group in ("web", "db", "cache"):
        assert listing[group]["hosts"] == ["staging-aio"], listing


def _vars(inv, host, names, extra=None):
    """Render variables for one host the way a play would (debug runs on the controller)."""
    out = {}
    for name in names:
        result = ansible_json([tool("ansible"), "-i", inv, host, "-c", "local", "-m", "ansible.builtin.debug",
                               "-a", f"var={name}", "-e", json.dumps({**VAULT, **(extra or {})})],
                              )
        text = result.stdout
        out[name] = json.loads(text[text.index("{"):])[name]
    return out


def test_separate_hosts_are_wired_over_private_addresses(fake_cloud, tmp_path):
    """lb + 2 web + db + cache: TLS on the balancer, the app port only from it,
    PostgreSQL and Redis only from the app hosts, everything from the groups."""
    inv = inventory_copy(tmp_path, "prod", "digitalocean.yml", fake_cloud)
    extra = {"flaskstack_domain": "shop.flaskstack.net"}
    lb = _vars(inv, "lb-1", ["base_firewall_allowed_ports", "nginx_upstream_servers", "letsencrypt_domains",
                             "nginx_server_names"], extra)
    assert [p["port"] for p in lb["base_firewall_allowed_ports"]] == [80, 443]
    assert lb["nginx_upstream_servers"] == ["10.0.0.11:8080", "10.0.0.12:8080"]
    assert lb["letsencrypt_domains"] == lb["nginx_server_names"] == ["shop.flaskstack.net"]
    web = _vars(inv, "web-1", ["flask_app_database_url", "flask_app_redis_url", "base_firewall_allowed_ports",
                               "nginx_backend_listen", "nginx_trusted_proxies", "flask_app_load_balancers",
                               "flask_app_upstream_server"], extra)
    assert web["flask_app_database_url"] == \
        "postgresql+psycopg://flaskapp:p%40ss/word%20with%20space@10.0.0.21:5432/flaskapp"
    assert web["flask_app_redis_url"].endswith("@10.0.0.31:6379/0")
    assert [(p["port"], p["from"]) for p in web["base_firewall_allowed_ports"]] == [(8080, "10.0.0.5")]
    assert web["nginx_backend_listen"] == web["flask_app_upstream_server"] == "10.0.0.11:8080"
    assert web["nginx_trusted_proxies"] == ["10.0.0.5"]
    assert web["flask_app_load_balancers"] == ["lb-1"]
    db = _vars(inv, "db-1", ["base_firewall_allowed_ports", "postgresql_allowed_networks",
                             "postgresql_listen_addresses"], extra)
    assert sorted((p["port"], p["from"]) for p in db["base_firewall_allowed_ports"]) == \
        [(5432, "10.0.0.11"), (5432, "10.0.0.12")]
    assert sorted(db["postgresql_allowed_networks"]) == ["10.0.0.11/32", "10.0.0.12/32"]
    assert db["postgresql_listen_addresses"] == ["localhost", "10.0.0.21"]
    cache = _vars(inv, "cache-1", ["redis_bind", "base_firewall_allowed_ports"], extra)
    assert cache["redis_bind"] == ["127.0.0.1", "10.0.0.31"]
    assert sorted((p["port"], p["from"]) for p in cache["base_firewall_allowed_ports"]) == \
        [(6379, "10.0.0.11"), (6379, "10.0.0.12")]


def test_all_in_one_host_uses_loopback_and_opens_nothing_extra(fake_cloud, tmp_path):
    inv = inventory_copy(tmp_path, "staging", "aws_ec2.yml", fake_cloud)
    aio = _vars(inv, "staging-aio", ["flask_app_database_url", "base_firewall_allowed_ports", "redis_bind",
                                     "letsencrypt_staging", "nginx_backend_listen", "flask_app_load_balancers"])
    assert "@127.0.0.1:5432/" in aio["flask_app_database_url"]
    assert [p["port"] for p in aio["base_firewall_allowed_ports"]] == [80, 443]
    assert aio["redis_bind"] == ["127.0.0.1"]
    assert aio["letsencrypt_staging"] is True
    assert aio["nginx_backend_listen"] == "" and aio["flask_app_load_balancers"] == []  # TLS on the host itself


def test_digitalocean_inventory_takes_its_token_from_the_environment_only(fake_cloud, tmp_path):
    """The committed file with only baseurl added: DO_API_TOKEN is the one credential it needs, and without
    it the fake refuses the request (401) and the source fails instead of listing hosts."""
    inv = inventory_copy(tmp_path, "prod", "digitalocean.yml", fake_cloud)
    FakeCloud.droplet_requests.clear()
    listing = json.loads(ansible_json([tool("ansible-inventory"), "-i", inv / "digitalocean.yml", "--list"]).stdout)
    assert sorted(listing["web"]["hosts"]) == ["web-1", "web-2"]
    assert FakeCloud.droplet_requests == [f"Bearer {DO_TOKEN}"]
    refused = run([tool("ansible-inventory"), "-i", inv / "digitalocean.yml", "--list"],
                  env={"DO_API_TOKEN": "", "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true"})
    assert refused.returncode != 0 and FakeCloud.droplet_requests[-1] in ("Bearer ", "Bearer None")


def test_a_droplet_without_a_vpc_address_gets_no_private_address_and_preflight_refuses_it(fake_cloud, tmp_path):
    """No fallback to the public address (PostgreSQL would listen on it): db-1 has no private address, and
    site.yml's preflight names it on the split site."""
    inv = inventory_copy(tmp_path, "prod", "digitalocean.yml", fake_cloud)
    FakeCloud.without_private = ("db-1",)
    try:
        listing = json.loads(ansible_json([tool("ansible-inventory"), "-i", inv, "--list"]).stdout)
        db = listing["_meta"]["hostvars"]["db-1"]
        address = db.get("flaskstack_private_ip", "")
        assert (address.get("__ansible_unsafe") if isinstance(address, dict) else address) == ""
        result = run([tool("ansible-playbook"), "-i", inv, REPO / "playbooks" / "preflight.yml",
                      "-e", json.dumps({**VAULT, "ansible_connection": "local", "flaskstack_domain": "shop.flaskstack.net",
                                        "letsencrypt_email": "ops@flaskstack.net"})],
                     env={"DO_API_TOKEN": DO_TOKEN}, log_name="pytest-inventory-preflight-no-private")
    finally:
        FakeCloud.without_private = ()
    said = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert "flaskstack_private_ip: db-1 has no private address" in said, said[-3000:]
    assert "web-1 has no private address" not in said
