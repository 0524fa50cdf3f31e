"""Helpers for testinfra tests that drive Ansible themselves (restore drills,
reload-vs-restart checks): run a playbook against the scenario's own hosts,
with the scenario's inventory and settings."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[2]))


def ansible_playbook(playbook: str, host: str, extra_vars: dict | None = None,
                     env: dict | None = None, timeout: int = 900,
                     flags: list[str] | None = None) -> subprocess.CompletedProcess:
    """Run PROJECT/playbook against one scenario host (with extra ansible-playbook
    flags such as --check --diff -vvv); output is returned, not printed."""
    argv, full_env = playbook_command(playbook, host, extra_vars, flags)
    full_env.update(env or {})
    return subprocess.run(argv, cwd=PROJECT, env=full_env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def playbook_command(playbook: str, host: str, extra_vars: dict | None = None,
                     flags: list[str] | None = None) -> tuple[list[str], dict]:
    """The argv and environment that run PROJECT/playbook against one scenario host
    (run them in PROJECT), for ansible_playbook() and for runs started in the background."""
    argv = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "--limit", host,
            str(PROJECT / playbook), "-e", json.dumps({"target": host, **(extra_vars or {})}), *(flags or [])]
    return argv, dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")


def converge(host: str, extra_vars: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Re-run the scenario's converge (its own, else the shared one) on one host with extra variables."""
    own = Path(os.environ.get("MOLECULE_SCENARIO_DIRECTORY", "/nonexistent")) / "converge.yml"
    playbook = str(own) if own.exists() else "molecule/_harness/converge.yml"
    return ansible_playbook(playbook, host, extra_vars, **kwargs)


def only_on(host, name: str, why: str) -> None:
    """Skip this test except on the scenario host `name`: for drills whose outcome the Debian
    release cannot change (`why` says what they exercise), so they run once, not once per release."""
    import pytest  # noqa: PLC0415 - only the verifier's environment has it

    if host.backend.get_hostname() != name:
        pytest.skip(f"{why}: release-independent, run once on {name}")


def scenario_hosts() -> dict:
    """Every host of the scenario by name (testinfra hosts), for tests that act on
    several at once or look at one from another."""
    import testinfra  # noqa: PLC0415 - only the verifier's environment has it

    hosts = testinfra.get_hosts(["ansible://all"], ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])
    return {h.backend.get_hostname(): h for h in hosts}


def listening_addresses(host, port: int) -> set[str]:
    """Local addresses with a TCP listener on `port` on a testinfra host."""
    with host.sudo():
        sockets = host.check_output("ss -Hltn 'sport = :%s'", str(port))
    return {line.split()[3].rsplit(":", 1)[0] for line in sockets.splitlines()}
