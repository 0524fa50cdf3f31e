"""site.yml end to end: the app answers over HTTPS with a certificate from the
ACME CA, talks to PostgreSQL and Redis, logs JSON with request ids, runs in a
sandbox, and every later deploy is safe (no failed request, automatic rollback
of a release that is not ready, rollback.yml)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.environ["FLASKSTACK_HARNESS"])
from testlib import PROJECT, ansible_playbook, scenario_hosts  # noqa: E402

testinfra_hosts = ["all"]

# Runs on the host: one HTTPS request to nginx for shop.test, trusting only
# the ACME CA's issuing root (from pebble's management API).
CLIENT = r'''
import json, ssl, sys, urllib.request, http.client
root = urllib.request.urlopen("https://localhost:15000/roots/0", timeout=10).read().decode()
method, path, body = sys.argv[1], sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else None)
ctx = ssl.create_default_context(cadata=root)
conn = http.client.HTTPSConnection("shop.test", 443, context=ctx, timeout=10)
headers = {"Content-Type": "application/json"} if body else {}
conn.request(method, path, body=body, headers=headers)
r = conn.getresponse()
data = r.read().decode()
issuer = dict(x[0] for x in conn.sock.getpeercert()["issuer"])
print(json.dumps({"status": r.status, "headers": dict(r.getheaders()), "body": data,
                  "issuer": issuer.get("commonName", "")}))
'''

# Runs on the host in the background: GET PATH through nginx until the stop
# file appears (bounded: 120 s, 20000 requests); counts failures (a status of
# 400 or more, or no answer) and the releases that answered (JSON "release").
LOOP = r'''
import json, os, ssl, sys, time, http.client
ctx = ssl._create_unverified_context()
ok = failed = 0
errors = []
releases = set()
path = sys.argv[3]
deadline = time.monotonic() + 120
while time.monotonic() < deadline and ok + failed < 20000 and not os.path.exists(sys.argv[1]):
    try:
        conn = http.client.HTTPSConnection("shop.test", 443, context=ctx, timeout=10)
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        if r.status < 400:
            ok += 1
            if body.startswith(b"{"):
                releases.add(json.loads(body).get("release", ""))
        else:
            failed += 1
            errors.append(r.status)
        conn.close()
    except Exception as e:
        failed += 1
        errors.append(repr(e))
    time.sleep(0.02)
json.dump({"ok": ok, "failed": failed, "errors": errors[:20], "releases": sorted(releases)},
          open(sys.argv[2], "w"))
'''


def request(host, method="GET", path="/health", body=None):
    args = [method, path] + ([json.dumps(body)] if body is not None else [])
    out = host.check_output("python3 -c %s " + " ".join(["%s"] * len(args)), CLIENT, *args)
    result = json.loads(out)
    if result["body"].startswith("{"):
        result["json"] = json.loads(result["body"])
    return result


def current_release(host) -> str:
    return os.path.basename(host.file("/srv/flaskapp/current").linked_to)


def acme_root(host) -> str:
    """The test ACME CA's issuing root, from pebble's management API on the host."""
    return host.check_output("python3 -c %s", "import urllib.request; print(urllib.request.urlopen("
                             "'https://localhost:15000/roots/0', timeout=10).read().decode())")


def venv_of(host, release: str) -> str:
    return host.file(f"/srv/flaskapp/releases/{release}/venv").linked_to


def main_pid(host) -> str:
    return host.check_output("systemctl show -p MainPID --value gunicorn-flaskapp.service")


def deploy(host, source: Path, **extra):
    return ansible_playbook("playbooks/deploy.yml", host.backend.get_hostname(),
                            {"flask_app_source": str(source), **extra})


def app_copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(PROJECT / "sample_app", target,
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return target


def test_https_health_with_a_certificate_from_the_acme_ca(host):
    answer = request(host, path="/health")
    assert answer["status"] == 200
    assert answer["json"]["status"] == "ok"
    assert "Pebble" in answer["issuer"], answer["issuer"]
    assert answer["headers"]["Strict-Transport-Security"].startswith("max-age=")


def test_ready_checks_postgresql_and_redis(host):
    answer = request(host, path="/health/ready")
    assert answer["status"] == 200, answer
    assert answer["json"]["checks"] == {"database": "ok", "redis": "ok"}
    assert answer["json"]["release"] == current_release(host)


def test_api_write_survives_a_gunicorn_restart_and_is_in_postgresql(host):
    created = request(host, "POST", "/api/notes", {"text": "written before the restart"})
    assert created["status"] == 201, created
    note_id = created["json"]["id"]
    with host.sudo():
        host.check_output("systemctl restart gunicorn-flaskapp.service")
    again = request(host, path=f"/api/notes/{note_id}")
    assert again["status"] == 200 and again["json"]["text"] == "written before the restart"
    with host.sudo("postgres"):
        row = host.check_output("psql -d flaskapp -tAc %s", f"SELECT text FROM notes WHERE id = {note_id}")
    assert row == "written before the restart"


def test_redis_holds_the_cached_listing_and_the_hit_counter(host):
    first = request(host, path="/api/notes")
    second = request(host, path="/api/notes")
    assert (first["headers"]["X-Cache"], second["headers"]["X-Cache"]) in {("miss", "hit"), ("hit", "hit")}
    # as the app's ACL user (password from the scenario's inventory)
    cli = "REDISCLI_AUTH=leak-canary-Redis-flaskapp-2026 redis-cli --no-auth-warning --user flaskapp"
    ttl = int(host.check_output(f"{cli} TTL flaskstack:notes:recent"))
    hits = int(host.check_output(f"{cli} GET flaskstack:hits:api"))
    assert 0 < ttl <= 30
    assert hits >= 2


def test_logs_in_journald_are_json_with_the_request_id_nginx_sent(host):
    answer = request(host, path="/health/ready")
    request_id = answer["headers"]["X-Request-ID"]
    assert len(request_id) == 32
    # journald takes the lines asynchronously: poll (bounded) until both are in.
    deadline = time.monotonic() + 15
    while True:
        with host.sudo():
            lines = host.check_output("journalctl -u gunicorn-flaskapp.service -o cat --no-pager -n 300")
        entries = [json.loads(line) for line in lines.splitlines() if request_id in line]
        app_entry = [e for e in entries if e.get("message") == "request"]
        access = [e for e in entries if e.get("logger") == "gunicorn.access"]
        if (app_entry and access) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert app_entry and app_entry[0]["path"] == "/health/ready" and app_entry[0]["status"] == 200
    assert access and access[0]["status"] == 200


# Runs on the host: GET /health through nginx with a client's own forwarding
# headers (a spoofed host, scheme and port); prints the request id nginx assigned.
SPOOFED = r'''
import ssl, urllib.request, http.client
root = urllib.request.urlopen("https://localhost:15000/roots/0", timeout=10).read().decode()
conn = http.client.HTTPSConnection("shop.test", 443, context=ssl.create_default_context(cadata=root), timeout=10)
conn.request("GET", "/health", headers={"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http",
                                        "X-Forwarded-Port": "6666", "Forwarded": "host=evil.example;proto=http"})
answer = conn.getresponse()
answer.read()
print(answer.status, answer.getheader("X-Request-ID"))
'''


def logged_request(host, request_id: str) -> dict:
    """The app's JSON log line for one request (journald takes it asynchronously: bounded poll)."""
    deadline = time.monotonic() + 15
    while True:
        with host.sudo():
            lines = host.check_output("journalctl -u gunicorn-flaskapp.service -o cat --no-pager -n 300")
        entries = [json.loads(line) for line in lines.splitlines()
                   if request_id in line and '"message": "request"' in line]
        if entries:
            return entries[0]
        assert time.monotonic() < deadline, f"no log line for request {request_id}"
        time.sleep(0.2)


def test_the_edge_decides_the_host_and_scheme_the_app_sees(host):
    """A client's X-Forwarded-Host/-Proto/-Port never reach the app: it sees the site's name
    over HTTPS. On both hosts: the maps that decide it are nginx's, whose version differs
    between the releases."""
    status, request_id = host.check_output("python3 -c %s", SPOOFED).split()
    assert status == "200"
    entry = logged_request(host, request_id)
    assert (entry["host"], entry["scheme"]) == ("shop.test", "https"), entry


def test_debug_is_off_and_errors_are_not_tracebacks(host):
    missing = request(host, path="/no-such-page")
    assert missing["status"] == 404
    assert "Traceback" not in missing["body"] and "Werkzeug Debugger" not in missing["body"]
    assert request(host, path="/console")["status"] == 404
    env = host.file("/srv/flaskapp/current/app.env")
    assert (env.user, env.group, env.mode) == ("root", "flaskapp", 0o640)
    with host.sudo():
        content = env.content_string
    assert 'APP_ENV="production"' in content and "DEBUG" not in content


def test_nginx_serves_the_release_static_files(host):
    answer = request(host, path="/static/app.css")
    assert answer["status"] == 200 and "font-family" in answer["body"]
    assert "immutable" in answer["headers"]["Cache-Control"]


def exposure(host, unit):
    """systemd-analyze security's overall figure for UNIT (printed for the report)."""
    with host.sudo():
        report = host.check_output("systemd-analyze security --no-pager %s", unit)
    level = float(report.rsplit(f"Overall exposure level for {unit}:", 1)[1].split()[0])
    print(f"\n{host.backend.get_hostname()}: systemd-analyze exposure of {unit} = {level}")
    return level


def test_gunicorn_is_sandboxed_and_socket_activated(host):
    for unit in ("gunicorn-flaskapp.service", "gunicorn-flaskapp-candidate.service"):
        assert exposure(host, unit) <= 2.0
    assert host.service("gunicorn-flaskapp.socket").is_running
    props = host.check_output("systemctl show gunicorn-flaskapp.service -p User -p NoNewPrivileges -p ProtectSystem")
    assert "User=flaskapp" in props and "NoNewPrivileges=yes" in props and "ProtectSystem=strict" in props
    workers = host.check_output("ps -o user= --ppid $(systemctl show -p MainPID --value gunicorn-flaskapp.service)")
    assert set(workers.split()) == {"flaskapp"}


def test_nginx_and_postgresql_run_in_sandboxes_of_their_own_drop_ins(host):
    cluster = host.check_output("systemctl list-units --plain --no-legend 'postgresql@*.service'").split()[0]
    for unit in ("nginx.service", cluster):
        assert exposure(host, unit) <= 5.0
        props = host.check_output("systemctl show %s -p FragmentPath -p DropInPaths -p ProtectSystem", unit)
        assert "ProtectSystem=strict" in props
        assert "flaskstack-sandbox.conf" in props  # a drop-in ...
        assert "FragmentPath=/lib/systemd/" in props or "FragmentPath=/usr/lib/systemd/" in props  # ... beside the packaged unit
    assert host.check_output("systemctl show %s -p User --value", cluster) == "postgres"
    assert request(host)["status"] == 200  # nginx and PostgreSQL serve from inside them


@pytest.fixture(scope="session")
def audit(tmp_path_factory):
    """playbooks/audit.yml once for every scenario host at once (lynis runs side by side)."""
    reports = tmp_path_factory.mktemp("audit")
    return ansible_playbook("playbooks/audit.yml", "all", {"audit_report_dir": str(reports)}), reports


def test_audit_lynis_hardening_index_and_service_sandboxes(host, audit):
    """playbooks/audit.yml (what `make audit` runs): lynis >= 80 on the all-in-one host, every
    service of the stack at or below 5.0, the figures written as JSON on the controller."""
    name = host.backend.get_hostname()
    result, reports = audit
    figures = json.loads((reports / f"{name}.json").read_text())
    print(f"\n{name}: lynis hardening index {figures['hardening_index']}, warnings {figures['warnings']}, "
          f"suggestions {sorted(set(figures['suggestions']))}; exposure {figures['exposure']}")
    assert result.returncode == 0, result.stdout[-3000:]
    assert figures["hardening_index"] >= 80
    assert figures["lynis_tests_performed"] > 200  # a full audit, not a short run
    kinds = {unit.split("@")[0].split("-")[0].removesuffix(".service") for unit in figures["exposure"]}
    assert kinds == {"nginx", "postgresql", "redis", "gunicorn"}, figures["exposure"]
    assert max(figures["exposure"].values()) <= 5.0


def test_tls_is_mozilla_intermediate_exactly_by_a_scanner(host, tmp_path):
    """sslyze (from the controller, over the host's address) checks protocols, ciphers, curves
    and the certificate chain against Mozilla's intermediate profile, trusting the ACME CA's root."""
    (tmp_path / "acme-root.pem").write_text(acme_root(host) + "\n")
    address = host.check_output("hostname -I").split()[0]
    scan = subprocess.run(
        [str(PROJECT / ".venv-scan" / "bin" / "sslyze"), "--mozilla_config=intermediate",
         f"--certinfo_ca_file={tmp_path / 'acme-root.pem'}", f"--json_out={tmp_path / 'scan.json'}",
         f"shop.test:443{{{address}}}"],
        capture_output=True, text=True, timeout=180)
    verdict = scan.stdout[scan.stdout.find("COMPLIANCE AGAINST"):]
    print(f"\n{host.backend.get_hostname()}: sslyze {verdict.strip()}")
    assert scan.returncode == 0 and "OK - Compliant" in verdict, scan.stdout[-3000:] + scan.stderr
    result = json.loads((tmp_path / "scan.json").read_text())["server_scan_results"][0]["scan_result"]
    curves = {c["name"] for c in result["elliptic_curves"]["result"]["supported_curves"]}
    assert curves == {"X25519", "secp256r1", "secp384r1"}
    deployment = result["certificate_info"]["result"]["certificate_deployments"][0]
    assert deployment["verified_certificate_chain"], "the chain does not validate to the ACME CA's root"
    for version in ("ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1"):
        assert not result[f"{version}_cipher_suites"]["result"]["accepted_cipher_suites"], version


@contextlib.contextmanager
def request_loop(host, path="/health"):
    """Runs LOOP on the host for the duration of the block; yields its result dict."""
    outcome: dict = {}
    with host.sudo():
        host.run("rm -f /run/loop.stop /run/loop.json; systemctl reset-failed loadloop.service")
        host.check_output("systemd-run --unit=loadloop python3 -c %s /run/loop.stop /run/loop.json %s", LOOP, path)
    time.sleep(2)
    try:
        yield outcome
    finally:
        time.sleep(2)
        with host.sudo():
            host.run("touch /run/loop.stop")
            for _ in range(30):
                if host.file("/run/loop.json").exists:
                    break
                time.sleep(1)
            outcome.update(json.loads(host.file("/run/loop.json").content_string))


def test_a_second_release_deploys_with_zero_failed_requests(host, drill, tmp_path):
    """Same lock file: the venv is reused and gunicorn reloads (HUP)."""
    first = current_release(host)
    source = app_copy(tmp_path, "release2")
    # the live release's lock exactly (an earlier drill may have deployed another one)
    with host.sudo():
        live_lock = host.file("/srv/flaskapp/current/requirements.txt").content_string
    (source / "requirements.txt").write_text(live_lock)
    with (source / "flaskstack_sample" / "static" / "app.css").open("a") as css:
        css.write(f"/* release 2, {time.time_ns()} */\n")
    with request_loop(host) as loop:
        result = deploy(host, source)
    assert result.returncode == 0, result.stdout[-3000:]
    second = current_release(host)
    assert second != first
    print(f"\n{host.backend.get_hostname()}: {loop['ok']} requests during the deploy, {loop['failed']} failed")
    assert loop["failed"] == 0, loop
    assert loop["ok"] > 50
    assert loop["releases"] == sorted([first, second])  # served by both, one after the other
    assert venv_of(host, second) == venv_of(host, first)  # reused, not rebuilt
    assert request(host, path="/health")["json"]["release"] == second


def serving_now(hosts: dict) -> dict:
    """Host name -> (live release, gunicorn's main PID), read now."""
    return {name: (current_release(h), main_pid(h)) for name, h in hosts.items()}


@pytest.fixture(scope="session")
def new_lock_deploy(tmp_path_factory):
    """One deploy of a release with a new lock file to every host at once (each is its own
    all-in-one site, so all switch in one batch), a request loop running on each meanwhile."""
    hosts = scenario_hosts()
    before = serving_now(hosts)
    source = app_copy(tmp_path_factory.mktemp("newlock"), f"release-new-lock-{time.time_ns()}")
    test_lock = (PROJECT / "sample_app" / "requirements-test.txt").read_text()
    extra = test_lock[test_lock.index("iniconfig=="):].split("\n    # via")[0]
    with (source / "requirements.txt").open("a") as lock:
        lock.write(f"# lock {time.time_ns()}\n" + extra + "\n")
    with contextlib.ExitStack() as stack:
        loops = {name: stack.enter_context(request_loop(h)) for name, h in hosts.items()}
        result = ansible_playbook("playbooks/deploy.yml", "all",
                                  {"flask_app_source": str(source), "flaskstack_deploy_serial": len(hosts)})
    # read now: later tests on a host (its drills) deploy again
    after = serving_now(hosts)
    venvs = {name: (venv_of(h, before[name][0]), venv_of(h, after[name][0])) for name, h in hosts.items()}
    kept = {name: h.file(venvs[name][0]).is_directory for name, h in hosts.items()}
    return result, before, after, venvs, kept, loops


def test_a_new_lock_file_restarts_gunicorn_without_failed_requests(host, new_lock_deploy):
    """A changed lock gets a new venv beside the live one and a restart; the socket
    unit holds connections while the new master starts."""
    result, before, after, venvs, kept, loops = new_lock_deploy
    name = host.backend.get_hostname()
    (release_before, pid_before), (release_after, pid_after) = before[name], after[name]
    venv_before, venv_after = venvs[name]
    loop = loops[name]
    assert result.returncode == 0, result.stdout[-3000:]
    print(f"\n{name}: {loop['ok']} requests during the restart deploy, {loop['failed']} failed")
    assert loop["failed"] == 0, loop
    assert release_after != release_before
    assert pid_after != pid_before
    assert venv_after != venv_before
    assert kept[name]  # the old venv stays for a rollback


@pytest.fixture(scope="module")
def git_version(host, drill, tmp_path_factory):
    """A bare repository on the host (/opt/app.git) whose tag v-test is not the branch tip."""
    work = app_copy(tmp_path_factory.mktemp("git"), "gitsrc")
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t.test"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", f"release from git {time.time_ns()}"], check=True)
    subprocess.run(git + ["tag", "v-test"], check=True)
    tagged = subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    (work / "NOT-DEPLOYED").write_text("a later commit on main\n")
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "later"], check=True)
    bare = work.parent / "app.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    name = host.backend.get_hostname()
    with host.sudo():
        host.check_output("rm -rf /opt/app.git")
    subprocess.run(["docker", "cp", str(bare), f"{name}:/opt/app.git"], check=True)
    return tagged


def deploy_git(host):
    return ansible_playbook("playbooks/deploy.yml", host.backend.get_hostname(),
                            {"flask_app_git_repo": "file:///opt/app.git", "flask_app_git_version": "v-test"})


def test_a_release_from_git_at_a_given_version(host, git_version):
    """flask_app_git_repo + flask_app_git_version: the tagged commit is deployed, not the branch tip."""
    result = deploy_git(host)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    release = current_release(host)
    assert f"-{git_version[:12]}-" in release  # <time>-<commit>-<settings>
    assert not host.file(f"/srv/flaskapp/releases/{release}/NOT-DEPLOYED").exists
    assert host.file(f"/srv/flaskapp/releases/{release}/flaskstack_sample/__init__.py").exists
    assert request(host, path="/health/ready")["json"]["release"] == release


@pytest.fixture(scope="module")
def refused_deploy(host, drill, tmp_path_factory):
    """A release whose readiness answers 503, deployed under the request loop."""
    serving, pid = current_release(host), main_pid(host)
    source = app_copy(tmp_path_factory.mktemp("broken"), "broken")
    health = source / "flaskstack_sample" / "health.py"
    patched = health.read_text().replace("status = 200 if ok else 503", "status = 503")
    assert patched != health.read_text()
    health.write_text(patched)
    with request_loop(host) as loop:
        result = deploy(host, source, flask_app_health_timeout=6)
    said = " ".join((result.stdout + result.stderr).split())
    refused = re.search(r"release (\S+) did not answer", said)
    return {"result": result, "said": said, "loop": loop, "serving": serving, "pid": pid,
            "release": refused.group(1) if refused else None}


def test_a_release_that_is_not_ready_never_takes_traffic(host, refused_deploy):
    """It answers 503 in the candidate service: the deploy stops, the live release never changed."""
    said, loop, serving = refused_deploy["said"], refused_deploy["loop"], refused_deploy["serving"]
    assert refused_deploy["result"].returncode != 0
    assert "did not answer http://localhost/health/ready ready (200, release = release name) within 6 s" in said
    assert "in the candidate service (last answer: 503" in said
    assert f"Nothing was switched: {serving} still serves" in said
    print(f"\n{host.backend.get_hostname()}: {loop['ok']} requests during the refused deploy, {loop['failed']} failed")
    assert loop["failed"] == 0, loop
    assert loop["releases"] == [serving]
    assert current_release(host) == serving
    assert main_pid(host) == refused_deploy["pid"]
    assert not host.service("gunicorn-flaskapp-candidate.service").is_running
    assert request(host, path="/health/ready")["json"]["release"] == serving


def test_rollback_playbook_goes_back_one_ready_release(host, refused_deploy, tmp_path):
    """From a release deployed after the refused one, a rollback skips it (never ready)."""
    source = app_copy(tmp_path, "after-the-refused-one")
    (source / "flaskstack_sample" / "static" / "app.css").write_text(f"/* {time.time_ns()} */\n", encoding="utf-8")
    assert deploy(host, source).returncode == 0
    before = current_release(host)
    broken = refused_deploy["release"]
    assert broken and not host.file(f"/srv/flaskapp/releases/{broken}/.flaskstack-ready").exists
    result = ansible_playbook("playbooks/rollback.yml", host.backend.get_hostname())
    assert result.returncode == 0, result.stdout[-3000:]
    after = current_release(host)
    assert after < broken < before
    assert host.file(f"/srv/flaskapp/releases/{after}/.flaskstack-ready").exists
    assert request(host, path="/health/ready")["json"]["release"] == after
    # back to the newest good release by name
    result = ansible_playbook("playbooks/rollback.yml", host.backend.get_hostname(),
                              {"flask_app_rollback_to": before})
    assert result.returncode == 0, result.stdout[-3000:]
    assert current_release(host) == before


def test_redeploying_a_known_release_changes_nothing_and_prints_no_secret(host, git_version):
    """The same git version again: recognised by its commit, nothing unpacked, nothing restarted."""
    assert deploy_git(host).returncode == 0
    releases = sorted(host.file("/srv/flaskapp/releases").listdir())
    pid = main_pid(host)
    result = deploy_git(host)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "leak-canary" not in result.stdout + result.stderr
    assert sorted(host.file("/srv/flaskapp/releases").listdir()) == releases  # nothing unpacked or pruned
    assert len(releases) <= 3  # flask_app_keep_releases
    assert main_pid(host) == pid
    assert request(host, path="/health/ready")["status"] == 200
