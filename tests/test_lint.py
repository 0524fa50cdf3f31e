"""Linters as tests: yamllint (strict) and ansible-lint's production profile."""

from conftest import run, tail, tool


def test_yamllint():
    result = run([tool("yamllint"), "--strict", "."], log_name="yamllint")
    assert result.returncode == 0, tail(result.stdout + result.stderr)


def test_ansible_lint_production_profile():
    result = run([tool("ansible-lint"), "--profile", "production"], log_name="ansible-lint")
    assert result.returncode == 0, tail(result.stdout + result.stderr)


def test_changelog_fragments():
    result = run([tool("antsibull-changelog"), "lint"], log_name="antsibull-changelog")
    assert result.returncode == 0, tail(result.stdout + result.stderr)
