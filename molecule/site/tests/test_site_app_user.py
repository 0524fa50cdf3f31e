"""The app user cannot reach root (issue 25, items 1 and 2). The app user is what a
malicious dependency, a build step or a migration runs as, outside gunicorn's sandbox.
Every later deploy runs as root in the deploy tree, so the app user must not be able to
swap anything there for a link (root would follow it), nor change the code and venvs
root starts.

- The app user cannot rename, replace or add anything in the deploy root, releases/,
  shared/ or venvs/ (all hosts: a property of the converged host).
- A tree in which links were planted anyway (as an earlier version let the app user do):
  site.yml and deploy.yml leave what the links point at exactly as it was, and fail
  naming the link or are not affected (a deploy drill, on one host).
- The app user cannot write into any release or venv, a release from git included."""

from __future__ import annotations

import json
import os
import sys

import pytest

sys.path.insert(0, os.environ["FLASKSTACK_HARNESS"])
from testlib import ansible_playbook, converge  # noqa: E402
from test_site import current_release, deploy_git, git_version, request  # noqa: E402,F401

testinfra_hosts = ["all"]

APP = "flaskapp"
ROOT = "/srv/flaskapp"
# Root's own 0700 directory outside the app tree: what a planted link points at.
TARGET = "/root/flaskstack-tamper-target"

# Runs on the host as the app user: for each PATH, what an attacker would do - move it
# away and put a link to TARGET in its place, and add a file beside it. Prints what
# succeeded (and undoes nothing: the test restores the tree as root).
SWAP = r'''
import json, os, sys
target, paths = sys.argv[1], sys.argv[2:]
done = []
for path in paths:
    try:
        os.rename(path, path + ".moved-by-app")
        done.append("moved " + path)
        os.symlink(target, path)
        done.append("linked " + path)
    except OSError as error:
        pass
    try:
        os.symlink(target, path + ".new")
        done.append("added " + path + ".new")
    except OSError:
        pass
print(json.dumps(done))
'''

# Runs on the host as the app user: every directory and file under the ROOTS (links
# are not followed) that the app user could write, by access(2), and the result of
# really writing: a new file in each directory, an append to each regular file.
WRITE = r'''
import json, os, sys
writable, written = [], []
for top in sys.argv[1:]:
    for base, dirs, files in os.walk(top):
        entries = [base] + [os.path.join(base, f) for f in files]
        for path in entries:
            if os.path.islink(path):
                continue
            if os.access(path, os.W_OK):
                writable.append(path)
        try:
            with open(os.path.join(base, ".written-by-app"), "x"):
                written.append(base)
        except OSError:
            pass
        for name in files:
            path = os.path.join(base, name)
            if os.path.islink(path):
                continue
            try:
                with open(path, "a"):
                    written.append(path)
            except OSError:
                pass
print(json.dumps({"writable": writable[:20], "written": written[:20], "count": len(writable) + len(written)}))
'''


def as_app(host, script: str, *args: str) -> object:
    with host.sudo():
        out = host.check_output("runuser -u %s -- python3 -c %s " + " ".join(["%s"] * len(args)),
                                APP, script, *args)
    return json.loads(out)


def said(result) -> str:
    return " ".join((result.stdout + result.stderr).split()).replace('\\"', '"')


def target_state(host) -> str:
    """Owner, group, mode of TARGET and of what is in it."""
    with host.sudo():
        return host.check_output("stat -c '%%U:%%G %%a %%n' %s %s/keep", TARGET, TARGET)


@pytest.fixture(scope="module")
def target(host):
    with host.sudo():
        host.check_output("rm -rf %s && install -d -m 0700 -o root -g root %s && install -m 0600 /dev/null %s/keep",
                          TARGET, TARGET, TARGET)
    before = target_state(host)
    assert before.splitlines() == [f"root:root 700 {TARGET}", f"root:root 600 {TARGET}/keep"]
    yield before
    with host.sudo():
        host.check_output("rm -rf %s", TARGET)


def deploy_tree(host) -> list[str]:
    with host.sudo():
        releases = host.file(f"{ROOT}/releases").listdir()
    return [ROOT + "/" + name for name in ("releases", "shared", "venvs", "current", "candidate")] + [
        f"{ROOT}/releases/{name}" for name in releases]


def restore(host, path: str, moved: str) -> None:
    """Put PATH back as it was before it was swapped (as root, never through a link)."""
    with host.sudo():
        if host.file(moved).exists or host.file(moved).is_symlink:
            host.check_output("if [ -L %s ]; then rm -f %s; fi && mv -T %s %s", path, path, moved, path)


def test_the_app_user_cannot_swap_anything_in_the_deploy_tree(host, target):
    """The deploy root, releases/, shared/, venvs/, every release and the current and
    candidate links: the app user can neither move one away, nor put a link in its place,
    nor add one beside it."""
    paths = deploy_tree(host)
    done = []
    try:
        done = as_app(host, SWAP, TARGET, *paths)
    finally:
        for path in paths:
            restore(host, path, path + ".moved-by-app")
        with host.sudo():
            host.run("find %s -maxdepth 2 -name '*.new' -type l -delete", ROOT)
    assert done == [], done
    with host.sudo():
        root = host.file(ROOT)
        assert root.user == "root" and not root.mode & 0o022, (root.user, oct(root.mode))
        for name in ("releases", "shared", "venvs"):
            tree = host.file(f"{ROOT}/{name}")
            assert tree.is_directory and not tree.is_symlink and tree.user == "root", name
            assert not tree.mode & 0o022, (name, oct(tree.mode))
    assert target_state(host) == target


def test_the_app_user_cannot_write_any_release_or_venv(host):
    """Code and venvs are read-only to the app user: no file or directory under
    releases/ or venvs/ is writable to it, and really writing fails everywhere."""
    result = as_app(host, WRITE, f"{ROOT}/releases", f"{ROOT}/venvs")
    assert result["count"] == 0, result
    with host.sudo():
        venvs = host.file(f"{ROOT}/venvs").listdir()
        assert venvs
        for venv in venvs:
            assert host.file(f"{ROOT}/venvs/{venv}").user == "root", venv
            record = host.file(f"{ROOT}/venvs/{venv}/.flaskstack-complete")
            assert not record.exists or (record.user == "root" and not record.is_symlink), venv
        # the live release's venv was built (or checked) by this version: it has root's record
        live = host.file(f"{ROOT}/current/venv").linked_to
        assert host.file(f"{live}/.flaskstack-complete").user == "root"


def test_a_release_from_git_is_read_only_to_the_app_user(host, drill, git_version):
    """A git archive is group-writable (tar.umask 0002) and a release's group is the
    app's: unpacked from git, the release is still read-only to the app user. A deploy
    drill (one host): unpacking does not depend on the Debian release."""
    result = deploy_git(host)
    assert result.returncode == 0, said(result)[-3000:]
    release = f"{ROOT}/releases/{current_release(host)}"
    assert f"-{git_version[:12]}-" in release
    written = as_app(host, WRITE, release, host.file(f"{release}/venv").linked_to)
    assert written["count"] == 0, written


@pytest.fixture(scope="module")
def planted(host, drill, target):
    """Links to TARGET planted where the deploy tree's directories and links were, one
    path at a time (as root: standing for a tree an earlier version left to the app
    user), then site.yml (venvs/, as in the issue's demo) and deploy.yml run; the tree is
    restored after each. Returns each run's result and TARGET's state after it."""
    runs = {}
    name = host.backend.get_hostname()
    plan = [("site.yml", ["venvs"]), ("playbooks/deploy.yml", ["venvs"]), ("playbooks/deploy.yml", ["shared"]),
            ("playbooks/deploy.yml", ["releases"]), ("playbooks/deploy.yml", ["current", "candidate"])]
    for playbook, swapped in plan:
        paths = [f"{ROOT}/{what}" for what in swapped]
        try:
            with host.sudo():
                for path in paths:
                    host.check_output("if [ -e %s ] || [ -L %s ]; then mv -T %s %s.planted; fi && ln -s %s %s",
                                      path, path, path, path, TARGET, path)
            result = converge(name) if playbook == "site.yml" else ansible_playbook(playbook, name)
            with host.sudo():
                links = [host.file(p).is_symlink and host.file(p).linked_to for p in paths]
            runs[(playbook, tuple(swapped))] = {"result": result, "target": target_state(host), "links": links}
        finally:
            for path in paths:
                with host.sudo():
                    if host.file(path).is_symlink and host.file(path).linked_to == TARGET:
                        host.check_output("rm -f %s", path)
                    if host.file(path + ".planted").exists or host.file(path + ".planted").is_symlink:
                        if host.file(path).exists or host.file(path).is_symlink:
                            host.check_output("rm -f %s.planted", path)  # the deploy made it anew
                        else:
                            host.check_output("mv -T %s.planted %s", path, path)
    return runs


@pytest.mark.parametrize("playbook,swapped", [
    ("site.yml", ("venvs",)),
    ("playbooks/deploy.yml", ("venvs",)),
    ("playbooks/deploy.yml", ("shared",)),
    ("playbooks/deploy.yml", ("releases",)),
])
def test_a_planted_link_fails_the_run_naming_it_and_is_not_followed(host, planted, target, playbook, swapped):
    """Root's runs never follow a link in the deploy tree: the run fails, naming the
    link, and the root-owned 0700 directory it points at keeps its owner and mode."""
    run = planted[(playbook, swapped)]
    text = said(run["result"])
    assert run["target"] == target, run["target"]
    assert run["result"].returncode != 0, text[-3000:]
    path = f"{ROOT}/{swapped[0]}"
    assert (f"{path} already exists as a link" in text or f"{path} is a link" in text), text[-3000:]
    assert "leak-canary" not in text


def test_planted_current_and_candidate_links_are_replaced_not_followed(host, planted, target):
    """current and candidate are links root replaces (follow: false): a deploy with
    both pointing at root's directory goes through, and that directory is untouched."""
    run = planted[("playbooks/deploy.yml", ("current", "candidate"))]
    assert run["target"] == target, run["target"]
    assert run["result"].returncode == 0, said(run["result"])[-3000:]
    assert all(link and link.startswith(f"{ROOT}/releases/") for link in run["links"]), run["links"]
    assert request(host, path="/health/ready")["json"]["release"] == current_release(host)


def test_a_deploy_root_the_app_user_could_write_is_refused(host, drill):
    """deploy.yml on a deploy root the app user owns (as earlier versions left it, before
    site.yml's python role makes it root's): the deploy is refused, naming the path, before
    the lock is taken or anything changes. A deploy drill (one host)."""
    name = host.backend.get_hostname()
    with host.sudo():
        owner = host.check_output("stat -c %%U %s", ROOT)
        history = host.run("wc -l < %s/shared/deploys.jsonl", ROOT).stdout
        host.check_output("chown %s %s", APP, ROOT)
    try:
        result = ansible_playbook("playbooks/deploy.yml", name)
    finally:
        with host.sudo():
            host.check_output("chown %s %s", owner, ROOT)
    text = said(result)
    assert result.returncode != 0, text[-3000:]
    assert f"The deploy root {ROOT} is owned by {APP} with mode 0751" in text, text[-3000:]
    with host.sudo():
        assert host.run("wc -l < %s/shared/deploys.jsonl", ROOT).stdout == history  # no run recorded
        assert not host.file(f"{ROOT}/shared/deploy.lock").exists
