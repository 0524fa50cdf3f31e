"""Linters as tests: yamllint (strict) and ansible-lint's production profile,
the latter under both ansible lines (pinned and newest, tests/conftest.py LINES)."""

import pytest

from conftest import LINES, line_env, run, tail, tool


def test_yamllint():
    result = run([tool("yamllint"), "--strict", "."], log_name="yamllint")
    assert result.returncode == 0, tail(result.stdout + result.stderr)


@pytest.mark.parametrize("line", sorted(LINES))
def test_ansible_lint_production_profile(line):
    result = run([tool("ansible-lint", line), "--profile", "production"], env=line_env(line),
                 log_name=f"ansible-lint-{line}")
    assert result.returncode == 0, tail(result.stdout + result.stderr)


def test_changelog_fragments():
    result = run([tool("antsibull-changelog"), "lint"], log_name="antsibull-changelog")
    assert result.returncode == 0, tail(result.stdout + result.stderr)
