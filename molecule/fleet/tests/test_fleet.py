"""The fleet as a user sees it: HTTPS through the load balancer with a
certificate from the ACME CA, requests spread over both app hosts, the real
client address in the app's log, traffic between the tiers only where it must
flow, and deploys and a dead app host that cost no request.

Requests come from the cache host (an address that is neither the balancer nor
an app host), so the client address the app logs can be told apart."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, os.environ["FLASKSTACK_HARNESS"])
from testlib import PROJECT, ansible_playbook, scenario_hosts  # noqa: E402

testinfra_hosts = ["fleet-lb"]

SCENARIO = Path(__file__).resolve().parents[1]
ADDRESSES = {name: yaml.safe_load((SCENARIO / "host_vars" / f"{name}.yml").read_text())["flaskstack_private_ip"]
             for name in ("fleet-lb", "fleet-web1", "fleet-web2", "fleet-db", "fleet-cache")}
APP_HOSTS = ("fleet-web1", "fleet-web2")
# The site's settings (vars/site.yml): where the app and the certificate live.
SETTINGS = yaml.safe_load((SCENARIO / "vars" / "site.yml").read_text())
APP_ROOT = SETTINGS["flaskstack_app_root"]
CLIENT_HOST = "fleet-cache"

# Runs on the client host: N HTTPS requests to shop.test (the balancer),
# trusting only the ACME CA's issuing root (argv[1]); one JSON line each.
CLIENT = r'''
import json, ssl, sys, http.client
root, method, path, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ctx = ssl.create_default_context(cadata=root)
for _ in range(count):
    conn = http.client.HTTPSConnection("shop.test", 443, context=ctx, timeout=10)
    conn.request(method, path)
    r = conn.getresponse()
    body = r.read().decode()
    issuer = dict(x[0] for x in conn.sock.getpeercert()["issuer"])
    conn.close()
    print(json.dumps({"status": r.status, "headers": dict(r.getheaders()),
                      "json": json.loads(body) if body.startswith("{") else None,
                      "issuer": issuer.get("commonName", "")}))
'''

# Runs on the client host in the background: GET /health through the balancer
# until the stop file appears (bounded: 240 s, 20000 requests); counts failures
# (a status of 400 or more, or no answer), the releases and the app hosts that
# answered; writes its progress every 20 requests so the test can wait for it.
LOOP = r'''
import json, os, ssl, sys, time, http.client
stop, result, progress = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl._create_unverified_context()
ok = failed = 0
errors, releases, hosts = [], set(), {}
deadline = time.monotonic() + 240
while time.monotonic() < deadline and ok + failed < 20000 and not os.path.exists(stop):
    try:
        conn = http.client.HTTPSConnection("shop.test", 443, context=ctx, timeout=10)
        conn.request("GET", "/health")
        r = conn.getresponse()
        body = r.read()
        if r.status < 400:
            ok += 1
            answer = json.loads(body)
            releases.add(answer["release"])
            hosts[answer["host"]] = hosts.get(answer["host"], 0) + 1
        else:
            failed += 1
            errors.append(r.status)
        conn.close()
    except Exception as e:
        failed += 1
        errors.append(repr(e))
    if (ok + failed) % 20 == 0:
        with open(progress + ".tmp", "w") as f:
            json.dump({"ok": ok, "failed": failed, "hosts": hosts}, f)
        os.replace(progress + ".tmp", progress)
    time.sleep(0.01)
json.dump({"ok": ok, "failed": failed, "errors": errors[:20], "releases": sorted(releases), "hosts": hosts},
          open(result, "w"))
'''

# Runs on one host: can it open a TCP connection to ADDRESS:PORT (3 s)?
PROBE = r'''
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()
    print("open")
except OSError:
    print("closed")
'''


@pytest.fixture(scope="module")
def fleet():
    return scenario_hosts()


@pytest.fixture(scope="module")
def acme_root(host):
    """The ACME CA's issuing root, from pebble's management API on the balancer."""
    return host.check_output(
        "python3 -c %s",
        "import ssl, urllib.request; print(urllib.request.urlopen('https://localhost:15000/roots/0', "
        "context=ssl._create_unverified_context(), timeout=10).read().decode())")


def through_lb(fleet, acme_root, path="/health", count=1, method="GET") -> list[dict]:
    out = fleet[CLIENT_HOST].check_output("python3 -c %s %s %s %s %s", CLIENT, acme_root, method, path, str(count))
    return [json.loads(line) for line in out.splitlines()]


def current_release(app_host) -> str:
    return os.path.basename(app_host.file(f"{APP_ROOT}/current").linked_to)


def releases_on_disk(app_host) -> set[str]:
    return set(app_host.file(f"{APP_ROOT}/releases").listdir())


def wait_until(check, seconds: float, what: str):
    """Poll `check` (bounded); return its first truthy value."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {seconds} s")


@contextlib.contextmanager
def request_loop(fleet):
    """LOOP on the client host for the duration of the block (it is answering
    before the block starts); yields its result dict, filled in at the end."""
    client = fleet[CLIENT_HOST]
    outcome: dict = {}
    with client.sudo():
        client.run("rm -f /run/loop.stop /run/loop.json /run/loop.progress; systemctl reset-failed loadloop.service")
        client.check_output("systemd-run --unit=loadloop python3 -c %s /run/loop.stop /run/loop.json /run/loop.progress",
                            LOOP)
        wait_until(lambda: client.file("/run/loop.progress").exists
                   and json.loads(client.file("/run/loop.progress").content_string)["ok"] >= 20,
                   30, "the request loop answering")
    try:
        yield outcome
    finally:
        with client.sudo():
            # a few more requests after the block, then stop and collect
            seen = json.loads(client.file("/run/loop.progress").content_string)
            wait_until(lambda: json.loads(client.file("/run/loop.progress").content_string)["ok"]
                       + json.loads(client.file("/run/loop.progress").content_string)["failed"]
                       >= seen["ok"] + seen["failed"] + 40, 30, "requests after the drill")
            client.run("touch /run/loop.stop")
            wait_until(lambda: client.file("/run/loop.json").exists, 30, "the request loop's result")
            outcome.update(json.loads(client.file("/run/loop.json").content_string))


def run_playbook(playbook: str, **extra):
    """A playbook on the whole fleet with the scenario's settings and vault, as converge has them
    (EXTRA last: of several -e, the last one wins)."""
    return ansible_playbook(playbook, "all", flags=["-e", f"@{SCENARIO / 'vars' / 'site.yml'}",
                                                   "-e", f"@{SCENARIO / 'vars' / 'vault.yml'}", "-e", json.dumps(extra)])


def app_copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(PROJECT / "sample_app", target, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    with (target / "flaskstack_sample" / "static" / "app.css").open("a") as css:
        css.write(f"/* {name}, {time.time_ns()} */\n")
    return target


# what the balancer logs when the app hosts are drained and put back one at a time
ONE_AT_A_TIME = [f"{ADDRESSES[name]}:8080 {event}" for name in APP_HOSTS
                 for event in ("taken out of rotation", "back in rotation")]


def rotation_log(fleet) -> list[str]:
    """What the balancer logged about taking app hosts out of rotation and back, oldest first."""
    with fleet["fleet-lb"].sudo():
        return fleet["fleet-lb"].check_output("journalctl -t flaskstack-nginx-rotation -o cat --no-pager").splitlines()


def probe(fleet, source: str, target: str, port: int) -> str:
    return fleet[source].check_output("python3 -c %s %s %s", PROBE, ADDRESSES[target], str(port))


def test_https_through_the_load_balancer_with_a_certificate_from_the_acme_ca(fleet, acme_root):
    answer = through_lb(fleet, acme_root)[0]
    assert answer["status"] == 200 and answer["json"]["status"] == "ok"
    assert "Pebble" in answer["issuer"], answer["issuer"]
    assert answer["headers"]["Strict-Transport-Security"].startswith("max-age=")
    assert through_lb(fleet, acme_root, "/health/ready")[0]["json"]["checks"] == {"database": "ok", "redis": "ok"}
    static = through_lb(fleet, acme_root, "/static/app.css")[0]
    assert static["status"] == 200 and "immutable" in static["headers"]["Cache-Control"]


def test_values_set_once_are_followed_by_every_role(fleet):
    """The app root, socket, certificate directory and name and ACME webroot are set once
    (vars/site.yml, none at its role's default): the app user's home, gunicorn, the deploy
    and nginx on the app hosts use the root and socket; the balancer's nginx serves the
    certificate where the letsencrypt role keeps it and answers ACME from its webroot
    (the certificate the other tests check was issued through it)."""
    socket = SETTINGS["flaskstack_app_socket"]
    for name in APP_HOSTS:
        app_host = fleet[name]
        with app_host.sudo():
            assert app_host.user("flaskapp").home == APP_ROOT
            assert app_host.file(f"{APP_ROOT}/current").is_symlink
            assert app_host.file(f"{APP_ROOT}/venvs").is_directory
            assert app_host.socket(f"unix://{socket}").is_listening
            unit = app_host.check_output("systemctl cat gunicorn-flaskapp.socket")
            assert f"ListenStream={socket}" in unit, unit
            site = app_host.check_output("nginx -T 2>/dev/null")
            assert f"server unix:{socket}" in site
            assert f"{APP_ROOT}/current/flaskstack_sample/static" in site
        assert not app_host.file("/srv/flaskapp").exists
    lb = fleet["fleet-lb"]
    lineage = f"{SETTINGS['letsencrypt_cert_dir']}/{SETTINGS['letsencrypt_cert_name']}"
    with lb.sudo():
        site = lb.check_output("nginx -T 2>/dev/null")
        assert f"ssl_certificate {lineage}/fullchain.pem;" in site, site
        assert f"ssl_certificate_key {lineage}/privkey.pem;" in site
        assert f"root {SETTINGS['letsencrypt_webroot']};" in site
        assert "/etc/ssl/flaskstack" not in site and "/var/www/acme" not in site
        assert lb.file(f"{lineage}/fullchain.pem").is_symlink  # certbot's lineage, not the placeholder


def test_requests_spread_over_both_app_hosts(fleet, acme_root):
    answers = through_lb(fleet, acme_root, count=20)
    served = {a["json"]["host"] for a in answers if a["status"] == 200}
    assert served == set(APP_HOSTS), answers


def app_log_entry(fleet, request_id: str) -> tuple[str, dict]:
    """The app host that logged one request and its JSON line (bounded poll: journald is asynchronous)."""
    def logged():
        for name in APP_HOSTS:
            with fleet[name].sudo():
                lines = fleet[name].check_output("journalctl -u gunicorn-flaskapp.service -o cat --no-pager -n 500")
            for line in lines.splitlines():
                if request_id in line and '"message": "request"' in line:
                    return name, json.loads(line)
        return None

    return wait_until(logged, 15, f"the app's log line for request {request_id}")


def test_the_app_logs_the_real_client_address(fleet, acme_root):
    """One X-Forwarded-For hop reaches the app: the client's, not the balancer's."""
    request_id = through_lb(fleet, acme_root, "/health/ready")[0]["headers"]["X-Request-ID"]
    _, entry = app_log_entry(fleet, request_id)
    assert entry["remote_addr"] == ADDRESSES[CLIENT_HOST], entry
    assert entry["remote_addr"] != ADDRESSES["fleet-lb"]


# Runs on one host: GET /health with a client's own forwarding headers (a
# spoofed host, scheme, port and client address), over HTTPS to the balancer
# (argv[2] "lb", trusting only the ACME root argv[1]) or over plain HTTP to an
# app host's nginx (argv[2] its private address); prints the request id.
SPOOFED = r'''
import ssl, sys, http.client
root, target = sys.argv[1], sys.argv[2]
if target == "lb":
    conn = http.client.HTTPSConnection("shop.test", 443, context=ssl.create_default_context(cadata=root), timeout=10)
else:
    conn = http.client.HTTPConnection(target, 8080, timeout=10)
conn.request("GET", "/health", headers={"Host": "shop.test", "X-Forwarded-Host": "evil.example",
                                        "X-Forwarded-Proto": "http" if target == "lb" else "https",
                                        "X-Forwarded-Port": "6666", "X-Forwarded-For": "192.0.2.66"})
answer = conn.getresponse()
answer.read()
assert answer.status == 200, answer.status
print(answer.getheader("X-Request-ID"))
'''


def test_the_balancer_decides_the_host_and_scheme_the_app_sees(fleet, acme_root):
    """Through the balancer a client's X-Forwarded-* are replaced by what the balancer
    accepted, and the app host takes them from the balancer alone."""
    request_id = fleet[CLIENT_HOST].check_output("python3 -c %s %s lb", SPOOFED, acme_root)
    _, entry = app_log_entry(fleet, request_id)
    assert (entry["host"], entry["scheme"]) == ("shop.test", "https"), entry
    assert entry["remote_addr"] == ADDRESSES[CLIENT_HOST], entry


def test_an_app_host_trusts_forwarding_headers_from_the_balancer_only(fleet, acme_root):
    """A request that reaches an app host's nginx from elsewhere (here: the app host itself;
    the firewall keeps other hosts out) gets what that nginx accepted: plain HTTP on 8080."""
    web = "fleet-web1"
    request_id = fleet[web].check_output("python3 -c %s %s %s", SPOOFED, acme_root, ADDRESSES[web])
    name, entry = app_log_entry(fleet, request_id)
    assert name == web
    assert (entry["host"], entry["scheme"]) == ("shop.test:8080", "http"), entry
    assert entry["remote_addr"] == ADDRESSES[web], entry


def test_traffic_flows_only_where_it_must(fleet):
    assert probe(fleet, "fleet-web1", "fleet-db", 5432) == "open"
    assert probe(fleet, "fleet-web2", "fleet-cache", 6379) == "open"
    assert probe(fleet, "fleet-lb", "fleet-db", 5432) == "closed"
    assert probe(fleet, "fleet-lb", "fleet-cache", 6379) == "closed"
    assert probe(fleet, "fleet-lb", "fleet-web1", 8080) == "open"
    assert probe(fleet, "fleet-db", "fleet-web1", 8080) == "closed"
    assert probe(fleet, "fleet-cache", "fleet-web2", 8080) == "closed"
    # the balancer listens on 22, 80 and 443 only (pebble, test scaffolding, on loopback)
    with fleet["fleet-lb"].sudo():
        listeners = fleet["fleet-lb"].check_output("ss -Hltn")
    public = {line.split()[3].rsplit(":", 1)[1] for line in listeners.splitlines()
              if not line.split()[3].startswith(("127.", "[::1]"))}
    assert public == {"22", "80", "443"}, listeners


def test_a_rolling_deploy_drops_no_request(fleet, tmp_path):
    before = {name: current_release(fleet[name]) for name in APP_HOSTS}
    source = app_copy(tmp_path, "rolling")
    mark, started = len(rotation_log(fleet)), time.time()
    with request_loop(fleet) as loop:
        result = run_playbook("playbooks/deploy.yml", flask_app_source=str(source))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    after = {name: current_release(fleet[name]) for name in APP_HOSTS}
    print(f"\nrolling deploy over {len(APP_HOSTS)} app hosts in {time.time() - started:.0f} s: "
          f"{loop['ok']} requests through the balancer, {loop['failed']} failed, answered by {loop['hosts']}")
    assert loop["failed"] == 0, loop
    assert loop["ok"] > 100
    # one release name on every host (one deploy time), served after the old ones
    assert after["fleet-web1"] == after["fleet-web2"] not in before.values()
    assert loop["releases"] == sorted({*before.values(), after["fleet-web1"]})
    # one host at a time: each drained and put back before the next one left
    assert rotation_log(fleet)[mark:] == ONE_AT_A_TIME


def test_site_yml_on_the_running_fleet_restarts_one_app_host_at_a_time(fleet):
    """New gunicorn settings through site.yml: each app host is drained, restarted
    on a release with the new settings, checked and put back before the next."""
    pids = {name: fleet[name].check_output("systemctl show -p MainPID --value gunicorn-flaskapp.service")
            for name in APP_HOSTS}
    mark, started = len(rotation_log(fleet)), time.time()
    with request_loop(fleet) as loop:
        result = run_playbook("molecule/fleet/converge.yml", gunicorn_workers=3)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    print(f"\nsite.yml with new gunicorn settings in {time.time() - started:.0f} s: {loop['ok']} requests "
          f"through the balancer, {loop['failed']} failed, answered by {loop['hosts']}")
    assert loop["failed"] == 0, loop
    for name in APP_HOSTS:
        assert fleet[name].check_output("systemctl show -p MainPID --value gunicorn-flaskapp.service") != pids[name]
        with fleet[name].sudo():
            assert "workers = 3" in fleet[name].file(f"{APP_ROOT}/current/gunicorn.conf.py").content_string
    assert rotation_log(fleet)[mark:] == ONE_AT_A_TIME


def test_a_dead_app_host_costs_no_request(fleet, acme_root):
    web1 = fleet["fleet-web1"]
    with request_loop(fleet) as loop:
        with web1.sudo():
            web1.check_output("systemctl stop gunicorn-flaskapp.socket gunicorn-flaskapp.service")
        try:
            during = through_lb(fleet, acme_root, count=20)
        finally:
            with web1.sudo():
                web1.check_output("systemctl start gunicorn-flaskapp.socket")
    print(f"\none app host stopped: {loop['ok']} requests through the balancer, {loop['failed']} failed, "
          f"answered by {loop['hosts']}")
    assert loop["failed"] == 0, loop
    assert [a["status"] for a in during] == [200] * 20
    assert {a["json"]["host"] for a in during} == {"fleet-web2"}
    # back: both serve again (the balancer retries a failed server after fail_timeout)
    wait_until(lambda: {a["json"]["host"] for a in through_lb(fleet, acme_root, count=10)} == set(APP_HOSTS),
               60, "both app hosts serving again")


def test_a_release_that_is_not_ready_stops_on_the_first_app_host(fleet, acme_root, tmp_path):
    serving = {name: current_release(fleet[name]) for name in APP_HOSTS}
    on_disk = {name: releases_on_disk(fleet[name]) for name in APP_HOSTS}
    source = app_copy(tmp_path, "never-ready")
    health = source / "flaskstack_sample" / "health.py"
    patched = health.read_text().replace("status = 200 if ok else 503", "status = 503")
    assert patched != health.read_text()
    health.write_text(patched)
    with request_loop(fleet) as loop:
        result = run_playbook("playbooks/deploy.yml", flask_app_source=str(source), flask_app_health_timeout=6)
    said = " ".join((result.stdout + result.stderr).split())
    print(f"\nrelease refused on the first app host: {loop['ok']} requests through the balancer, "
          f"{loop['failed']} failed")
    assert result.returncode != 0
    assert re.search(r"fleet-web1: release \S+ did not answer .* in the candidate service \(last answer: 503", said), \
        said[-3000:]
    assert loop["failed"] == 0, loop
    assert current_release(fleet["fleet-web1"]) == serving["fleet-web1"]
    assert current_release(fleet["fleet-web2"]) == serving["fleet-web2"]
    assert releases_on_disk(fleet["fleet-web2"]) == on_disk["fleet-web2"]  # never touched
    assert {a["json"]["host"] for a in through_lb(fleet, acme_root, count=10)} == set(APP_HOSTS)
