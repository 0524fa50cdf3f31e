"""The GitHub Actions workflows cannot run here, so they are linted: actionlint (with ShellCheck
on the run: scripts) and zizmor (offline, its default persona) on the collection's CI and the
app-repository example, and the collection's CI must run exactly what `make test` runs."""

import re
import shlex
import sys

import pytest

from conftest import REPO, load_yaml, run, tail, tool
from test_molecule import SCENARIOS

CI = REPO / ".github" / "workflows" / "ci.yml"
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml")) + sorted((REPO / "docs" / "examples").glob("*.yml"))
# The only command of the Makefile's `test` target; the CI's jobs run it with a PYTEST_ARGS each
# (the lint job runs the same pytest without `make test`, whose images it does not need).
MAKE_TEST_RECIPE = ["$(BIN)/python -m pytest tests -n 2 --dist loadscope --no-loadscope-reorder $(PYTEST_ARGS)"]
MAKE_TEST_STEP = 'sudo make test PYTHON="$PYTHON" NEWEST_PYTHON="$NEWEST_PYTHON" PYTEST_ARGS="$PYTEST_ARGS"'
VENV_PYTEST = ".venv/bin/python -m pytest"


def actionlint(paths, log_name):
    return run([tool("actionlint"), "-no-color", "-shellcheck", tool("shellcheck"), "-pyflakes=", *paths],
               log_name=log_name)


def zizmor(paths, log_name):
    return run([tool("zizmor"), "--offline", "--no-progress", "--color", "never", *paths], log_name=log_name)


def test_the_workflows_are_there():
    names = [str(p.relative_to(REPO)) for p in WORKFLOWS]
    assert ".github/workflows/ci.yml" in names and "docs/examples/app-deploy.yml" in names, names


def test_actionlint():
    result = actionlint(WORKFLOWS, "actionlint")
    assert result.returncode == 0, tail(result.stdout + result.stderr)


def test_zizmor():
    result = zizmor(WORKFLOWS, "zizmor")
    assert result.returncode == 0, tail(result.stdout + result.stderr)


def test_the_linters_refuse_a_broken_workflow(tmp_path):
    """So a linter that checks nothing (a wrong flag, a stub binary) cannot pass the tests above."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request_target\n"
        "jobs:\n"
        "  build:\n"
        "    runs-on: ubuntu-24.04\n"
        "    stepz: []\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "        with:\n"
        "          ref: ${{ github.event.pull_request.head.sha }}\n"
        "      - run: echo \"${{ github.event.pull_request.title }}\" $UNQUOTED\n"
    )
    linted = actionlint([bad], "actionlint-broken")
    assert linted.returncode != 0, linted.stdout + linted.stderr
    for check in ("syntax-check", "expression", "shellcheck"):
        assert f"[{check}]" in linted.stdout, (check, linted.stdout)
    audited = zizmor([bad], "zizmor-broken")
    assert audited.returncode != 0, audited.stdout + audited.stderr
    for audit in ("template-injection", "unpinned-uses", "dangerous-triggers"):
        assert audit in audited.stdout, (audit, audited.stdout)


def test_ci_matrix_lists_every_molecule_scenario():
    scenarios = load_yaml(CI)["jobs"]["molecule"]["strategy"]["matrix"]["scenario"]
    assert scenarios == SCENARIOS, (
        f"the molecule matrix of {CI.name} must list the scenarios under molecule/ "
        f"(sorted, each once): {scenarios} != {SCENARIOS}"
    )


def make_test_recipe():
    lines = (REPO / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"test:", line))
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def ci_selections():
    """(job, the pytest arguments of `make test`'s pytest) for every job of ci.yml that runs tests."""
    selections = []
    for job_id, job in load_yaml(CI)["jobs"].items():
        matrix = job.get("strategy", {}).get("matrix", {})
        for step in job["steps"]:
            command = step.get("run", "")
            if "pytest" not in command and "make test" not in command:
                continue
            if command.startswith(VENV_PYTEST):
                selections.append((job_id, shlex.split(command[len(VENV_PYTEST):])))
                continue
            assert command == MAKE_TEST_STEP, (job_id, command)
            args = step["env"]["PYTEST_ARGS"]
            for scenario in matrix.get("scenario", [None]):
                label = f"{job_id}[{scenario}]" if scenario else job_id
                selections.append((label, ["tests", *shlex.split(args.replace("${{ matrix.scenario }}", str(scenario)))]))
    return selections


def collected(args):
    result = run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args])
    assert result.returncode in (0, 5), tail(result.stdout + result.stderr)  # 5: nothing selected
    return {line for line in result.stdout.splitlines() if re.match(r"tests/\S+::", line)}


def test_ci_runs_what_make_test_runs():
    """Each test of `make test` runs in exactly one CI job, each scenario in its own."""
    assert make_test_recipe() == MAKE_TEST_RECIPE, (
        "`make test` is no longer one pytest run: make .github/workflows/ci.yml run what it runs, then this test"
    )
    everything = collected(["tests"])
    assert any("test_scenario[" in test for test in everything)
    seen = {}
    for label, args in ci_selections():
        tests = collected(args)
        assert tests, f"CI job {label} selects no test: {args}"
        for test in tests:
            assert test not in seen, f"{test} runs in CI job {seen[test]} and in {label}"
            seen[test] = label
        if label.startswith("molecule["):
            scenario = label[len("molecule["):-1]
            assert tests == {f"tests/test_molecule.py::test_scenario[{scenario}]"}, (label, tests)
    assert set(seen) - everything == set(), "CI runs tests that make test does not"
    missing = sorted(everything - set(seen))
    assert not missing, f"make test runs tests that no CI job runs: {missing[:20]}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_secret_is_put_into_a_script(path):
    """Secrets reach run: scripts through env: only (zizmor checks attacker-controlled contexts;
    this checks the secrets too)."""
    for job in load_yaml(path)["jobs"].values():
        for step in job["steps"]:
            assert "secrets." not in step.get("run", ""), (path.name, step.get("name"))
