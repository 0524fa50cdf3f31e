"""Day-2 operations on the converged site: one deploy at a time per host (the lock, its
expiry and how to break it), the deploy history and playbooks/releases.yml, maintenance
mode (playbooks/maintenance.yml) and one-off Flask commands (playbooks/run.yml).

Kept cheap: the hosts are the scenario's, already converged; the lock drills reuse the
live release's lock file (venv reused) and deploy one new release at most."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.environ["FLASKSTACK_HARNESS"])
from testlib import PROJECT, ansible_playbook, converge, playbook_command, scenario_hosts  # noqa: E402
from test_site import app_copy, current_release  # noqa: E402

testinfra_hosts = ["all"]

LOCK = "/srv/flaskapp/shared/deploy.lock"
HISTORY = "/srv/flaskapp/shared/deploys.jsonl"

# Runs on the host: GET each PATH over HTTPS from ADDRESS to ADDRESS:443 with SNI and
# Host shop.test (so nginx sees the client as ADDRESS: loopback is the public, the
# host's own address is on the scenario's maintenance allow-list).
CLIENT = r'''
import json, socket, ssl, sys, http.client
address, paths = sys.argv[1], sys.argv[2:]
ctx = ssl._create_unverified_context()
out = {}
for path in paths:
    conn = http.client.HTTPSConnection(address, 443, context=ctx, timeout=10)
    conn.sock = ctx.wrap_socket(socket.create_connection((address, 443), timeout=10), server_hostname="shop.test")
    conn.request("GET", path, headers={"Host": "shop.test"})
    r = conn.getresponse()
    out[path] = {"status": r.status, "headers": dict(r.getheaders()), "body": r.read().decode(errors="replace")}
    conn.close()
print(json.dumps(out))
'''


def get(host, address: str, *paths: str) -> dict:
    # one line without quotes: it also passes through `sudo sh -c` over SSH unharmed
    script = f"import base64; exec(base64.b64decode('{base64.b64encode(CLIENT.encode()).decode()}'))"
    out = host.check_output("python3 -c %s %s " + " ".join(["%s"] * len(paths)), script, address, *paths)
    return json.loads(out)


def own_address(host) -> str:
    return host.check_output("hostname -I").split()[0]


def history(host) -> list[dict]:
    with host.sudo():
        text = host.run("cat %s", HISTORY).stdout
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def said(result: subprocess.CompletedProcess) -> str:
    """All the run printed, on one line, with the quotes JSON escapes in messages unescaped."""
    return " ".join((result.stdout + result.stderr).split()).replace('\\"', '"')


def start_playbook(playbook: str, name: str, extra_vars: dict, log: Path) -> subprocess.Popen:
    """ansible-playbook in the background, as testlib.ansible_playbook runs it, its output in LOG."""
    argv, env = playbook_command(playbook, name, extra_vars)
    with log.open("w") as out:
        return subprocess.Popen(argv, cwd=PROJECT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)


def write_lock(host, holder: dict, age: int) -> None:
    """A lock as another controller's run would have left it, taken AGE seconds ago."""
    now = int(host.check_output("date +%s"))
    lock = {**holder, "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - age)),
            "since_epoch": now - age, "token": "not-yours"}
    with host.sudo():
        host.check_output("printf '%%s\\n' %s > %s && chmod 0640 %s", json.dumps(lock), LOCK, LOCK)


@pytest.fixture(scope="module")
def contention(host, drill, tmp_path_factory):
    """Deploy A (a new release, the live lock file: venv reused) and, while A holds the
    lock, deploy B of the same source: B must fail at once, A succeed."""
    name = host.backend.get_hostname()
    source = app_copy(tmp_path_factory.mktemp("day2"), "release-lock")
    with host.sudo():
        (source / "requirements.txt").write_text(host.file("/srv/flaskapp/current/requirements.txt").content_string)
    (source / "flaskstack_sample" / "static" / "app.css").write_text(f"/* lock drill {time.time_ns()} */\n")
    before, lines_before = current_release(host), len(history(host))
    log = source.parent / "first-deploy.log"
    first = start_playbook("playbooks/deploy.yml", name, {"flask_app_source": str(source)}, log)
    try:
        deadline = time.monotonic() + 120
        with host.sudo():
            while not host.file(LOCK).exists and first.poll() is None and time.monotonic() < deadline:
                time.sleep(0.3)
            held = json.loads(host.file(LOCK).content_string) if host.file(LOCK).exists else None
        started = time.monotonic()
        second = ansible_playbook("playbooks/deploy.yml", name, {"flask_app_source": str(source)})
        second_seconds = time.monotonic() - started
        first.wait(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    return {"source": source, "before": before, "held": held, "second": second, "second_seconds": second_seconds,
            "first_rc": first.returncode, "first_out": log.read_text(), "after": current_release(host),
            "new_lines": history(host)[lines_before:]}


def test_a_second_deploy_fails_at_once_naming_who_holds_the_lock(host, contention):
    held = contention["held"]
    assert held, "the first deploy never held the lock"
    assert held["action"] == "deploy" and held["target"] == str(contention["source"])
    assert {"user", "controller", "pid", "since", "since_epoch"} <= set(held)
    second = contention["second"]
    text = said(second)
    print(f"\n{host.backend.get_hostname()}: the second deploy failed after {contention['second_seconds']:.1f} s")
    assert second.returncode != 0
    assert f"The deploy lock {LOCK} is held by {held['user']}@{held['controller']} (ansible-playbook pid {held['pid']})" in text
    assert f"since {held['since']}" in text and f"for deploy {contention['source']}" in text
    assert "changes nothing" in text and "flask_app_deploy_lock_break=true" in text
    assert "Unpack the release" not in second.stdout  # stopped before anything changed
    assert contention["first_rc"] == 0, contention["first_out"][-3000:]
    assert contention["after"] != contention["before"]
    assert not host.file(LOCK).exists  # released at the end
    # one line: the deploy that held the lock; the refused one recorded nothing
    assert [(e["action"], e["result"], e["release"]) for e in contention["new_lines"]] == [
        ("deploy", "ok", contention["after"])]


@pytest.fixture(scope="module")
def lock_drills(host, contention):
    """A live lock of another run refuses a deploy until it is broken; a stale one expires.
    Each deploy is the live release again (nothing switches)."""
    name = host.backend.get_hostname()
    extra = {"flask_app_source": str(contention["source"])}
    holder = {"user": "alice", "controller": "laptop", "pid": 4242, "action": "deploy", "target": "/home/alice/app"}
    write_lock(host, holder, age=60)
    refused = ansible_playbook("playbooks/deploy.yml", name, extra)
    broken = ansible_playbook("playbooks/deploy.yml", name, {**extra, "flask_app_deploy_lock_break": True})
    lock_after_break = host.file(LOCK).exists
    write_lock(host, {**holder, "action": "rollback", "target": "the release before current"}, age=2 * 3600)
    expired = ansible_playbook("playbooks/deploy.yml", name, extra)
    return {"refused": refused, "broken": broken, "lock_after_break": lock_after_break, "expired": expired}


def test_a_lock_can_be_broken_and_a_stale_one_expires(host, lock_drills):
    refused = said(lock_drills["refused"])
    assert lock_drills["refused"].returncode != 0
    assert "is held by alice@laptop (ansible-playbook pid 4242)" in refused and "for deploy /home/alice/app" in refused
    broken = said(lock_drills["broken"])
    assert lock_drills["broken"].returncode == 0, broken[-3000:]
    assert "Took over the deploy lock" in broken and "alice@laptop" in broken and "broken on request" in broken
    assert not lock_drills["lock_after_break"]
    expired = said(lock_drills["expired"])
    assert lock_drills["expired"].returncode == 0, expired[-3000:]
    assert "for rollback the release before current" in expired and "expired" in expired
    assert not host.file(LOCK).exists


@pytest.fixture(scope="module")
def failed_and_rolled_back(host, lock_drills, tmp_path_factory):
    """A deploy refused on its requirements (after unpacking: inside the lock), then a rollback."""
    name = host.backend.get_hostname()
    source = app_copy(tmp_path_factory.mktemp("day2-failed"), "release-unpinned")
    (source / "requirements.txt").write_text("flask>=3\ngunicorn\n")
    failed = ansible_playbook("playbooks/deploy.yml", name, {"flask_app_source": str(source)})
    live = current_release(host)
    rollback = ansible_playbook("playbooks/rollback.yml", name)
    return {"source": str(source), "failed": failed, "live": live, "rollback": rollback, "after": current_release(host),
            "lock_left": host.file(LOCK).exists}


def test_every_deploy_and_rollback_is_in_the_history(host, contention, failed_and_rolled_back):
    """One JSON line per run: failed ones too, the rollback, the scenario's own converge."""
    run = failed_and_rolled_back
    assert run["failed"].returncode != 0 and "does not pin every package" in said(run["failed"])
    assert run["rollback"].returncode == 0, run["rollback"].stdout[-3000:]
    assert not run["lock_left"]
    entries = history(host)
    for entry in entries:
        assert {"time", "user", "controller", "action", "release", "source", "result", "duration"} <= set(entry)
        assert entry["action"] in {"deploy", "rollback"} and entry["result"] in {"ok", "failed"}
        assert entry["time"].endswith("Z") and entry["duration"] >= 0
    assert entries[0]["source"] == "the bundled sample app"  # site.yml's first converge
    failed, rollback = entries[-2], entries[-1]
    assert (failed["action"], failed["result"], failed["source"]) == ("deploy", "failed", run["source"])
    assert "does not pin every package" in failed["error"]
    assert (rollback["action"], rollback["result"]) == ("rollback", "ok")
    assert (rollback["previous"], rollback["release"]) == (run["live"], run["after"])
    assert run["after"] != run["live"]
    with host.sudo():
        log = host.file(HISTORY)
        assert (log.user, log.group, log.mode) == ("root", "root", 0o640)
    assert "leak-canary" not in host.run("sudo cat %s", HISTORY).stdout
    print(f"\n{host.backend.get_hostname()}: {len(entries)} history lines, "
          f"{sum(e['result'] == 'failed' for e in entries)} failed, {sum(e['action'] == 'rollback' for e in entries)} rollbacks")


def test_releases_playbook_shows_releases_live_and_history(host, failed_and_rolled_back):
    name = host.backend.get_hostname()
    result = ansible_playbook("playbooks/releases.yml", name, {"releases_lines": 3})
    assert result.returncode == 0, result.stdout[-3000:]
    task = result.stdout.rindex("Show the releases and the deploy history]")
    shown = json.loads(result.stdout[result.stdout.index("{", task):result.stdout.index("PLAY RECAP")].strip())["msg"]
    live = failed_and_rolled_back["after"]
    assert shown["live"] == live == current_release(host)
    assert f"{live} (LIVE, ready once)" in shown["releases"]
    assert len(shown["history"]) == 3
    assert " rollback " in shown["history"][-1] and " OK in " in shown["history"][-1]
    assert " FAILED in " in shown["history"][-2] and "does not pin every package" in shown["history"][-2]
    refused = ansible_playbook("playbooks/releases.yml", name, {"releases_lines": "many"})
    assert refused.returncode != 0 and 'releases_lines must be a number of lines >= 1 (got "many")' in said(refused)


def test_a_one_off_flask_command_runs_as_the_app_user_and_prints_no_secret(host, drill):
    name = host.backend.get_hostname()
    # written as the README shows it: -e cmd="db current" (one argv word, split by Ansible at the space)
    result = ansible_playbook("playbooks/run.yml", name, {"run_host": name}, flags=["-e", "cmd=db current"])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    with host.sudo("postgres"):
        revision = host.check_output("psql -d flaskapp -tAc 'SELECT version_num FROM alembic_version'")
    assert f"{revision} (head)" in output
    assert "leak-canary" not in output and "SECRET_KEY" not in output and "DATABASE_URL" not in output
    whoami = ansible_playbook("playbooks/run.yml", name, {
        "cmd": "shell", "run_host": name,
        "run_stdin": "import os, pwd; print('running as', pwd.getpwuid(os.getuid()).pw_name, os.getuid())\n"})
    assert whoami.returncode == 0, whoami.stdout[-3000:]
    uid = host.check_output("id -u flaskapp")
    assert f"running as flaskapp {uid}" in whoami.stdout
    for bad, message in ((" ", 'a non-empty string, got " "'), ('db "current', "cannot be split into arguments")):
        refused = ansible_playbook("playbooks/run.yml", name, {"cmd": bad, "run_host": name})
        assert refused.returncode != 0 and message in said(refused), said(refused)[-2000:]
    elsewhere = ansible_playbook("playbooks/run.yml", name, {"cmd": "db current", "run_host": "nowhere"})
    assert elsewhere.returncode != 0 and 'a run_host in the web group' in said(elsewhere) and '(got "nowhere"' in said(elsewhere)


def answers(hosts: dict) -> dict:
    """Per host: what the public (loopback) and an allow-listed client (the host's own address) get."""
    public = ["/", "/api/notes", "/static/app.css", "/health", "/health/ready"]
    return {name: {"public": get(h, "127.0.0.1", *public), "allowed": get(h, own_address(h), "/", "/api/notes")}
            for name, h in hosts.items()}


@pytest.fixture(scope="session")
def maintenance():
    """Maintenance on for both hosts at once, site.yml (which deploys too) while it is on, then off."""
    hosts = scenario_hosts()
    seen = {}
    try:
        seen["on"] = ansible_playbook("playbooks/maintenance.yml", "all", {"state": "on"})
        seen["while_on"] = answers(hosts)
        seen["site"] = converge("all")
        seen["after_site"] = answers(hosts)
    finally:
        seen["off"] = ansible_playbook("playbooks/maintenance.yml", "all", {"state": "off"})
    seen["after_off"] = answers(hosts)
    seen["bad"] = ansible_playbook("playbooks/maintenance.yml", "all", {"state": "maybe"})
    return seen


def test_maintenance_mode_serves_503_except_health_and_the_allow_list(host, maintenance):
    name = host.backend.get_hostname()
    assert maintenance["on"].returncode == 0, maintenance["on"].stdout[-3000:]
    for phase in ("while_on", "after_site"):
        public, allowed = maintenance[phase][name]["public"], maintenance[phase][name]["allowed"]
        for path in ("/", "/api/notes", "/static/app.css"):
            answer = public[path]
            assert answer["status"] == 503, (phase, path, answer["status"])
            assert answer["headers"]["Retry-After"] == "120"  # nginx_maintenance_retry_after of the scenario
            assert "Down for maintenance" in answer["body"]
            # the page keeps the site's CSP and needs no exception from it
            assert answer["headers"]["Content-Security-Policy"].startswith("default-src 'self'")
            assert "<style" not in answer["body"] and "<script" not in answer["body"] and "style=" not in answer["body"]
        assert public["/health"]["status"] == 200 and public["/health/ready"]["status"] == 200
        assert "Retry-After" not in public["/health"]["headers"]
        assert allowed["/"]["status"] == 200 and allowed["/api/notes"]["status"] == 200, phase
    assert maintenance["site"].returncode == 0, maintenance["site"].stdout[-3000:]


def test_maintenance_mode_off_serves_everyone_again(host, maintenance):
    name = host.backend.get_hostname()
    assert maintenance["off"].returncode == 0, maintenance["off"].stdout[-3000:]
    public = maintenance["after_off"][name]["public"]
    assert {path: answer["status"] for path, answer in public.items()} == {
        "/": 200, "/api/notes": 200, "/static/app.css": 200, "/health": 200, "/health/ready": 200}
    assert not host.file("/etc/nginx/flaskstack-maintenance/app/on.conf").exists
    bad = said(maintenance["bad"])
    assert maintenance["bad"].returncode != 0 and 'state must be on or off: -e state=on or -e state=off (got "maybe")' in bad
