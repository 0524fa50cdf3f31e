"""Documentation cannot drift from code: role READMEs are generated from the
argument specs, and the top-level README names every role and both commands."""

import sys

import pytest

from conftest import REPO, ROLES

sys.path.insert(0, str(REPO / "tools"))
from role_docs import _text, render  # noqa: E402


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


def test_markup_becomes_markdown_with_nested_parentheses():
    assert _text("WSGI callable as C(package.module:variable) (or C(module:factory()) ).") == (
        "WSGI callable as `package.module:variable` (or `module:factory()` ).")
    assert _text(["I(gunicorn_app_root) holds", "M(ansible.builtin.uri) C(a(b)c)"]) == (
        "*gunicorn_app_root* holds `ansible.builtin.uri` `a(b)c`")
    assert _text("no markup (just parentheses)") == "no markup (just parentheses)"


def test_entry_points_are_documented():
    assert "## Entry point `config`" in render("gunicorn")
    assert "tasks_from: rollback" in render("flask_app")
