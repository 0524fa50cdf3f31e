"""Documentation cannot drift from code: role READMEs are generated from the
argument specs, and the top-level README names every role and both commands."""

import pytest

from conftest import REPO, ROLES
from role_docs import render


@pytest.mark.parametrize("role", ROLES)
def test_role_readme_is_generated_from_specs(role):
    readme = REPO / "roles" / role / "README.md"
    assert readme.exists(), f"run `make docs` to create roles/{role}/README.md"
    assert readme.read_text() == render(role), f"roles/{role}/README.md is stale: run `make docs`"


def test_readme_lists_commands_and_roles():
    readme = (REPO / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert readme.index("make demo") < readme.index("## ")  # the two commands come first
    for role in ROLES:
        assert f"roles/{role}/README.md" in readme, f"README.md does not link the {role} role"


def test_ci_runs_the_readme_test_command():
    assert "make test" in (REPO / ".ci" / "run").read_text()
