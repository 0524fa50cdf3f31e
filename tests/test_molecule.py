"""Every molecule scenario, run end to end (create, converge, idempotence,
verify, destroy) on Debian 12 and 13. Output goes to .logs/molecule-<name>.log.

Ansible lines (SCENARIO_LINES, the one place that says so): `site` runs with the
newest line's molecule and ansible (.venv-newest, first on PATH), every other
scenario with the pinned line (the running venv). fleet also converges site.yml,
so site.yml runs under both lines in every `make test`.

Scenario secrets contain the marker `leak-canary`; it must never be printed."""

import hashlib
import re

import pytest

from conftest import REPO, line_env, run, scenario_apt_slot_offset, tail, tool

SCENARIOS = sorted(p.parent.name for p in (REPO / "molecule").glob("*/molecule.yml"))
SCENARIO_LINES = {"site": "newest"}  # any other scenario: "pinned"


def scenario_secrets(scenario: str) -> str:
    """The text the scenario's test secrets are in: molecule.yml, and its ansible-vault file decrypted."""
    directory = REPO / "molecule" / scenario
    text = (directory / "molecule.yml").read_text()
    vault = directory / "vars" / "vault.yml"
    if vault.exists():
        shown = run([tool("ansible-vault"), "view", "--vault-password-file", directory / "vault-password", vault])
        assert shown.returncode == 0, shown.stderr
        text += shown.stdout
    return text


@pytest.mark.molecule
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario(scenario):
    line = SCENARIO_LINES.get(scenario, "pinned")
    env = {**line_env(line), "FLASKSTACK_APT_SLOT_OFFSET": str(scenario_apt_slot_offset())}
    result = run([tool("molecule", line), "test", "-s", scenario], env=env, timeout=2400,
                 log_name=f"molecule-{scenario}")
    assert result.returncode == 0, (
        f"molecule test -s {scenario} failed (full log: .logs/molecule-{scenario}.log)\n"
        + tail(result.stdout + result.stderr, 120)
    )
    # (checked after success: a failing verify may print its own commands)
    # Test secrets in scenarios contain this marker; no_log must keep them out of the output,
    # and their SHA-256 hashes too (what Redis stores, for one).
    output = result.stdout + result.stderr
    assert "leak-canary" not in output, "a secret appeared in the molecule output"
    secrets = set(re.findall(r"leak-canary[\w-]*", scenario_secrets(scenario)))
    for secret in secrets:
        assert hashlib.sha256(secret.encode()).hexdigest() not in output, f"the SHA-256 of a secret ({secret[:16]}...) was printed"
