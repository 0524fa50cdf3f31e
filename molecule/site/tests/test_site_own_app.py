"""Deploying your own app: tinyboard (tests/apps/tinyboard) - its own package and
WSGI module, a pip-freeze requirements file without hashes, Flask-Migrate
migrations, a Redis queue, no /health route and a file written at start-up -
deployed over the sample app with the documented inputs alone. Then the
failure drill: new gunicorn settings and environment in a release that cannot
start cost no request, and settings switch and roll back with the code.

Runs after test_site.py (it replaces the sample app); the tinyboard fixture
deploys it, so each test here can also run alone."""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.environ["FLASKSTACK_HARNESS"])
sys.path.insert(0, str(Path(__file__).parent))
from test_site import current_release, main_pid, request, request_loop, scenario_hosts, serving_now  # noqa: E402
from testlib import PROJECT, ansible_playbook  # noqa: E402

testinfra_hosts = ["all"]

TINYBOARD = PROJECT / "tests" / "apps" / "tinyboard"
# Everything a user sets for an app that is not the sample (README, "Your own app").
INPUTS = {
    "flask_app_factory": "tinyboard:create_app",
    "gunicorn_app_module": "tinyboard.server:app",
    "flaskstack_app_static_dir": "tinyboard/static",
    "flask_app_health_url": "http://localhost/",
    "flask_app_health_status_codes": [302],
    "flask_app_health_release_key": "",
    "flask_app_extra_env": {"TINYBOARD_DATA_DIR": "/var/lib/flaskapp/board"},
}


def tinyboard_copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(TINYBOARD, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def deploy(host, source: Path, **extra):
    return ansible_playbook("playbooks/deploy.yml", host.backend.get_hostname(),
                            {**INPUTS, "flask_app_source": str(source), **extra})


def release_file(host, name: str) -> str:
    with host.sudo():
        return host.file(f"/srv/flaskapp/current/{name}").content_string


@pytest.fixture(scope="session")
def tinyboard_site(tmp_path_factory):
    """tinyboard deployed by site.yml with the documented inputs: one run for every
    scenario host at once (ansible's forks run them side by side)."""
    source = tinyboard_copy(tmp_path_factory.mktemp("tinyboard"), "tinyboard")
    return ansible_playbook("site.yml", "all", {**INPUTS, "flask_app_source": str(source)})


@pytest.fixture(scope="module")
def tinyboard(host, tinyboard_site):
    result = tinyboard_site
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "leak-canary" not in result.stdout + result.stderr
    return current_release(host)


def test_own_app_serves_pages_static_files_and_its_queue(host, tinyboard):
    home = request(host, path="/")
    assert home["status"] == 302 and home["headers"]["Location"].endswith("/login")
    login = request(host, path="/login")
    assert login["status"] == 200 and "tinyboard" in login["body"]
    css = request(host, path="/static/board.css")  # from nginx, not Flask
    assert css["status"] == 200 and "immutable" in css["headers"]["Cache-Control"]
    posted = request(host, "POST", "/messages", {"body": "hello from the test"})
    assert posted["status"] == 201, posted
    cli = "REDISCLI_AUTH=leak-canary-Redis-flaskapp-2026 redis-cli --no-auth-warning --user flaskapp"
    assert str(posted["json"]["id"]) in host.check_output(f"{cli} LRANGE tinyboard:jobs 0 -1").split()
    with host.sudo("postgres"):
        assert host.check_output("psql -d flaskapp -tAc %s", "SELECT version_num FROM tinyboard_alembic_version") == "a1"
    # the start-up write went to the app's state directory; its release is read-only to it
    with host.sudo():
        assert "started pid" in host.file("/var/lib/flaskapp/board/startup.log").content_string
    assert '"tinyboard.server:app"' in release_file(host, "gunicorn.conf.py")
    assert 'TINYBOARD_DATA_DIR="/var/lib/flaskapp/board"' in release_file(host, "app.env")


def test_a_failed_deploy_with_new_gunicorn_settings_costs_no_request(host, drill, tinyboard, tmp_path):
    """New WSGI module, workers and environment, and the release cannot start
    (it writes to a relative path, read-only in the sandbox): refused in the
    candidate service, with the app's own error in the message."""
    serving, pid = current_release(host), main_pid(host)
    source = tinyboard_copy(tmp_path, "tinyboard-v2")
    (source / "tinyboard" / "entry.py").write_text("from .server import app as application  # noqa: F401\n")
    with request_loop(host, "/login") as loop:
        result = deploy(host, source, gunicorn_app_module="tinyboard.entry:application", gunicorn_workers=3,
                        flask_app_extra_env={"TINYBOARD_DATA_DIR": "logs"}, flask_app_health_timeout=6)
    said = " ".join((result.stdout + result.stderr).split())
    name = host.backend.get_hostname()
    print(f"\n{name}: {loop['ok']} requests during the failed deploy, {loop['failed']} failed")
    assert result.returncode != 0
    refused = re.search(rf"{name}: release (\S+) did not answer http://localhost/ ready \(302\) within 6 s", said)
    assert refused, said[-3000:]
    assert refused.group(1) != serving
    assert "OSError: [Errno 30] Read-only file system: 'logs'" in said
    assert f"Nothing was switched: {serving} still serves" in said
    assert loop["failed"] == 0, loop
    assert loop["ok"] > 20
    assert current_release(host) == serving and main_pid(host) == pid
    assert '"tinyboard.server:app"' in release_file(host, "gunicorn.conf.py")


def test_the_next_good_deploy_switches_settings_and_code_together(host, drill, tinyboard, tmp_path):
    before, pid = current_release(host), main_pid(host)
    source = tinyboard_copy(tmp_path, "tinyboard-v2")
    (source / "tinyboard" / "entry.py").write_text("from .server import app as application  # noqa: F401\n")
    with request_loop(host, "/login") as loop:
        result = deploy(host, source, gunicorn_app_module="tinyboard.entry:application", gunicorn_workers=3,
                        flask_app_extra_env={"TINYBOARD_DATA_DIR": "/var/lib/flaskapp/v2"})
    assert result.returncode == 0, result.stdout[-3000:]
    print(f"\n{host.backend.get_hostname()}: {loop['ok']} requests during the settings deploy, {loop['failed']} failed")
    assert loop["failed"] == 0, loop
    assert current_release(host) != before
    assert main_pid(host) != pid  # new settings: a new master
    config = release_file(host, "gunicorn.conf.py")
    assert '"tinyboard.entry:application"' in config and "workers = 3" in config
    with host.sudo():
        assert host.file("/var/lib/flaskapp/v2/startup.log").exists
    assert request(host, path="/login")["status"] == 200


def test_rollback_brings_back_the_settings_the_release_ran_with(host, drill, tinyboard):
    result = ansible_playbook("playbooks/rollback.yml", host.backend.get_hostname(), INPUTS)
    assert result.returncode == 0, result.stdout[-3000:]
    assert current_release(host) == tinyboard
    assert '"tinyboard.server:app"' in release_file(host, "gunicorn.conf.py")
    assert request(host, path="/login")["status"] == 200


def test_unpinned_requirements_are_refused_before_the_switch(host, drill, tinyboard, tmp_path):
    serving = current_release(host)
    source = tinyboard_copy(tmp_path, "tinyboard-unpinned")
    lock = source / "requirements.txt"
    lock.write_text(lock.read_text().replace("Flask==3.1.3", "Flask>=3.0").replace("redis==8.1.0", "redis"))
    result = deploy(host, source)
    said = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert "does not pin every package to one version: line 7: Flask>=3.0; line 17: redis" in said, said[-2000:]
    assert "Pin each with ==" in said
    assert current_release(host) == serving


@pytest.fixture(scope="session")
def incomplete_lock_deploys(tinyboard_site, tmp_path_factory):
    """A lock missing a package, deployed to every host side by side (threads; each its own run)."""
    source = tinyboard_copy(tmp_path_factory.mktemp("incomplete"), "tinyboard-incomplete")
    lock = source / "requirements.txt"
    lock.write_text(lock.read_text().replace("blinker==1.9.0\n", ""))
    hosts = scenario_hosts()
    before = serving_now(hosts)
    with concurrent.futures.ThreadPoolExecutor(len(hosts)) as pool:
        results = dict(zip(hosts, pool.map(lambda h: deploy(h, source), hosts.values())))
    # read now: later tests on a host (its drills) switch releases themselves
    after = serving_now(hosts)
    return results, before, after


def test_a_package_missing_for_the_hosts_python_is_refused_before_the_switch(host, tinyboard, incomplete_lock_deploys):
    results, before, after = incomplete_lock_deploys
    name = host.backend.get_hostname()
    result = results[name]
    said = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert "is incomplete for the Python of" in said, said[-2000:]
    assert "flask 3.1.3 requires blinker, which is not installed" in said.lower()
    assert "Nothing was switched" in said
    assert after[name] == before[name]  # the same release, served by the same gunicorn master


@pytest.fixture(scope="session")
def host_made_locks(tinyboard_site, tmp_path_factory):
    """On every host side by side (threads; each host's steps in order): playbooks/lock.yml
    makes tinyboard's lock on the host, a deploy without hashes is refused with
    flask_app_require_hashes, and the locked source deploys with it."""
    def lock_and_deploy(name):
        base = tmp_path_factory.mktemp(f"locked-{name}")
        source = tinyboard_copy(base, "tinyboard-locked")
        (source / "requirements.txt").unlink()
        made = ansible_playbook("playbooks/lock.yml", name, {
            "lock_host": name, "lock_requirements_in": str(source / "requirements.in")})
        if made.returncode != 0:
            return {"made": made}
        host = hosts[name]
        refused = deploy(host, tinyboard_copy(base, "tinyboard-plain"), flask_app_require_hashes=True)
        deployed = deploy(host, source, flask_app_require_hashes=True)
        return {"made": made, "lock": (source / "requirements.txt").read_text(),
                "refused": refused, "deployed": deployed}

    hosts = scenario_hosts()
    with concurrent.futures.ThreadPoolExecutor(len(hosts)) as pool:
        return dict(zip(hosts, pool.map(lock_and_deploy, hosts)))


def test_a_lock_made_on_the_host_fits_its_python_and_deploys_with_hashes_required(host, tinyboard, host_made_locks):
    outcome = host_made_locks[host.backend.get_hostname()]
    made = outcome["made"]
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-2000:]
    lock = outcome["lock"]
    assert "--hash=sha256:" in lock and "gunicorn==" in lock
    version = tuple(json.loads(host.check_output("python3 -c 'import sys, json; print(json.dumps(sys.version_info[:3]))'")))
    # redis needs async-timeout only below Python 3.11.3 (Debian 12 has 3.11.2)
    assert ("async-timeout==" in lock) == (version < (3, 11, 3)), (version, lock)

    refused = outcome["refused"]
    assert refused.returncode != 0
    assert "has no hashes and flask_app_require_hashes is true" in " ".join((refused.stdout + refused.stderr).split())

    deployed = outcome["deployed"]
    assert deployed.returncode == 0, deployed.stdout[-3000:]
    assert request(host, path="/login")["status"] == 200
