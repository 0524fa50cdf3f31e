"""Shared fixtures for the collection's pytest suite (everything that is not a
molecule scenario, plus one test per scenario that runs it)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# The two ansible lines under test: the running venv's (pinned, requirements/dev.txt)
# and the newest users install (.venv-newest, requirements/newest.txt; `make venv`).
NEWEST_BIN = REPO / ".venv-newest" / "bin"
LINES = {"pinned": BIN, "newest": NEWEST_BIN}
ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if (p / "tasks" / "main.yml").exists())
LOG_DIR = REPO / ".logs"


def pytest_configure(config):
    # every worker: a test may write its own log before any run() has made the directory
    LOG_DIR.mkdir(exist_ok=True)


# `make test` runs two xdist workers (-n 2 --dist loadscope, scheduled below). Each
# molecule scenario is a scope of its own, so two scenarios may run at once, one per
# worker (their hosts fit in memory many times over; the machine's two cores are
# what they share). Each file of other tests is one scope. Scopes start longest
# first (LONGEST_FIRST, from the clean-clone `make test` durations), so the two
# workers end together instead of one finishing a long scenario alone.
# Hosts that run apt at the same time need their own package cache (apt locks it):
# a scenario numbers its hosts of one suite from its worker's offset
# (scenario_apt_slot_offset: 0 and 10), the bare hosts pytest starts itself take
# BARE_HOST_APT_SLOT + worker, the cached base image's build slot 30.
SCENARIO_FILES = {"tests/test_molecule.py"}
BARE_HOST_APT_SLOT = 20
SCENARIO_APT_SLOTS_PER_WORKER = 10
LONGEST_FIRST = [
    "tests/test_molecule.py::test_scenario[site]",
    "tests/test_molecule.py::test_scenario[fleet]",
    "tests/test_up.py",
    "tests/test_molecule.py::test_scenario[base]",
    "tests/test_provision.py",
    "tests/test_molecule.py::test_scenario[postgresql]",
    "tests/test_molecule.py::test_scenario[letsencrypt]",
    "tests/test_provision_digitalocean.py",
    "tests/test_lint.py",
    "tests/test_minimal_host.py",
]


def scope_of(nodeid: str) -> str:
    """A molecule scenario is its own scope; any other test belongs to its file's."""
    path = nodeid.split("::", 1)[0]
    return nodeid if path in SCENARIO_FILES else path


def pytest_collection_modifyitems(config, items):
    # xdist hands scopes out in collection order (make test passes --no-loadscope-reorder)
    rank = {scope: i for i, scope in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(scope_of(item.nodeid), len(rank)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling  # noqa: PLC0415 - only with xdist

    class ScenarioOrFileScopes(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return scope_of(nodeid)

    return ScenarioOrFileScopes(config, log)


def worker_index() -> int:
    """This xdist worker's number (gw0 -> 0, gw1 -> 1; 0 without xdist)."""
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)


def scenario_apt_slot_offset() -> int:
    """Where this worker's scenario hosts start numbering their apt caches (molecule/_harness/create.yml)."""
    return SCENARIO_APT_SLOTS_PER_WORKER * worker_index()


def bare_host_apt_slot() -> int:
    """The apt cache slot of the bare hosts this worker starts (gw0 -> 20, gw1 -> 21)."""
    return BARE_HOST_APT_SLOT + worker_index()


def tool(name: str, line: str = "pinned") -> str:
    """Path of a toolchain command from the running venv, or from the venv of another ansible line."""
    return str(LINES[line] / name)


def line_env(line: str) -> dict:
    """PATH with that line's venv first, for tools that call ansible-* by name (ansible-lint, molecule)."""
    return {"PATH": f"{LINES[line]}:{os.environ.get('PATH', '')}"}


def run(argv, *, cwd=REPO, env=None, timeout=1800, log_name=None):
    """Run a command, optionally teeing its output to .logs/<log_name>.log."""
    full_env = dict(os.environ)
    full_env["PATH"] = f"{BIN}:{full_env.get('PATH', '')}"
    full_env.setdefault("ANSIBLE_FORCE_COLOR", "0")
    full_env.setdefault("PY_COLORS", "0")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:  # each worker its own fact cache: two runs must not write one file at once
        full_env.setdefault("ANSIBLE_CACHE_PLUGIN_CONNECTION", str(REPO / ".cache" / f"facts-{worker}"))
    full_env.update(env or {})
    result = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=full_env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )
    if log_name:
        LOG_DIR.mkdir(exist_ok=True)
        (LOG_DIR / f"{log_name}.log").write_text(result.stdout + "\n--- stderr ---\n" + result.stderr)
    return result


def closed_proxies(port: int) -> dict:
    """Every proxy variable pointing at a closed loopback port, loopback exempt: a client that would
    reach a real cloud API (or anything past this machine) fails at once instead."""
    closed = f"http://127.0.0.1:{port}"
    return {"HTTP_PROXY": closed, "HTTPS_PROXY": closed, "http_proxy": closed, "https_proxy": closed,
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


def tail(text: str, lines: int = 80) -> str:
    return "\n".join(text.splitlines()[-lines:])


def load_yaml(path: Path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@contextlib.contextmanager
def standalone_host(name: str, state: Path, log_name: str):
    """A bare test host (Debian 12) for the duration of the block, reached over SSH as `admin`
    like a cloud VM (molecule/_harness/host-up.yml); removed afterwards."""
    up = run(
        [tool("ansible-playbook"), "molecule/_harness/host-up.yml",
         "-e", f"host_name={name}", "-e", f"host_state_dir={state}",
         "-e", f"host_apt_slot={bare_host_apt_slot()}"],
        log_name=log_name,
    )
    assert up.returncode == 0, tail(up.stdout + up.stderr)
    try:
        yield {"name": name, "inventory": state / "inventory.yml", "state": state}
    finally:
        run([tool("ansible-playbook"), "molecule/_harness/host-down.yml",
             "-e", f"host_name={name}", "-e", f"host_state_dir={state}"])


@pytest.fixture(scope="session")
def testhost(tmp_path_factory):
    """One bare test host shared by the tests that only read it or change what they undo."""
    with standalone_host(f"flaskstack-pytest-{os.getpid()}", tmp_path_factory.mktemp("testhost"),
                         "pytest-testhost-up") as host:
        yield host


def docker_exec(name: str, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "exec", name, "sh", "-c", command],
                          capture_output=True, text=True, check=False, timeout=120)


def json_play_results(stdout: str) -> dict:
    """Parse the ansible.posix.json callback output (first JSON document)."""
    start = stdout.index("{")
    return json.loads(stdout[start:])


ROLE_PER_HOST_PLAY = """
- name: Apply one role per case
  hosts: all
  become: true
  gather_facts: true
  tasks:
    - name: Apply the role under test
      ansible.builtin.include_role:
        name: "flaskstack.deploy.{{ case_role }}"
"""


def role_per_host(testhost: dict, work: Path, hosts: dict, log_name: str, check: bool = False):
    """Apply one role per alias of the test host (each alias's variables name it in `case_role`),
    in one run; returns the failed results' messages by alias, the stats and the raw output."""
    base = load_yaml(testhost["inventory"])["all"]["hosts"][testhost["name"]]
    inventory = work / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {alias: {**base, **v} for alias, v in hosts.items()}}}))
    playbook = work / "play.yml"
    playbook.write_text(ROLE_PER_HOST_PLAY)
    result = run([tool("ansible-playbook"), "-i", inventory, "--forks", "4", *(["--check"] if check else []), playbook],
                 env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"}, log_name=log_name)
    data = json_play_results(result.stdout)
    failed: dict[str, list[tuple[str, list[str]]]] = {}
    for play in data["plays"]:
        for task in play["tasks"]:
            for host, res in task["hosts"].items():
                if res.get("failed"):
                    messages = [res.get("msg", "")] + [
                        item.get("msg", "") for item in res.get("results", []) if item.get("failed")]
                    failed.setdefault(host, []).append((task["task"]["name"], messages))
    return {"failed": failed, "stats": data["stats"], "raw": result.stdout, "returncode": result.returncode}
