"""Unit tests of the day-2 plugins: the deploy lock and history (deploy_lock), the
controller lookup, the argv, deploy_history and release_list filters, the cidr test."""

import json
import sys
import threading

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "plugins" / "test"))
sys.path.insert(0, str(REPO / "plugins" / "filter"))
from argv import argv  # noqa: E402
from history import deploy_history, release_list  # noqa: E402
from validators import is_cidr  # noqa: E402

from ansible.errors import AnsibleFilterError  # noqa: E402


class Failed(Exception):
    pass


class FakeModule:
    """What deploy_lock's take/release use of AnsibleModule."""

    def __init__(self, **params):
        self.params = {"holder": {}, "expiry": 1800, "break_lock": False, "token": "", "history": None,
                       "record": {}, **params}

    def fail_json(self, **result):
        raise Failed(result)


def _lock():
    from plugins.modules import deploy_lock  # noqa: PLC0415
    return deploy_lock


def test_the_lock_is_taken_once_and_names_its_holder(tmp_path):
    lock = _lock()
    path = str(tmp_path / "deploy.lock")
    holder = {"user": "alice", "controller": "laptop", "pid": 42, "action": "deploy", "target": "/src/app"}
    taken = lock.take(FakeModule(holder=holder), path, 1000.0)
    assert taken["broken"] is None and len(taken["token"]) == 32
    assert "token" not in taken["lock"] and taken["lock"]["since"] == "1970-01-01T00:16:40Z"
    with pytest.raises(Failed) as refused:
        lock.take(FakeModule(holder={"user": "bob"}), path, 1100.0)
    msg = refused.value.args[0]["msg"]
    assert "held by alice@laptop (ansible-playbook pid 42) since 1970-01-01T00:16:40Z (100 s ago) for deploy /src/app" in msg
    assert "expires 1700 s from now" in msg and "flask_app_deploy_lock_break=true" in msg
    assert "token" not in refused.value.args[0]["held_by"]


def test_of_many_runs_at_once_exactly_one_gets_the_lock(tmp_path):
    lock = _lock()
    path = str(tmp_path / "deploy.lock")
    results = []

    def attempt(index):
        try:
            results.append(lock.take(FakeModule(holder={"user": f"u{index}"}), path, 1000.0))
        except Failed:
            results.append(None)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r is not None for r in results) == 1


def test_a_stale_lock_expires_and_a_live_one_breaks_only_on_request(tmp_path):
    lock = _lock()
    path = str(tmp_path / "deploy.lock")
    lock.take(FakeModule(holder={"user": "alice"}), path, 1000.0)
    expired = lock.take(FakeModule(holder={"user": "bob"}, expiry=60), path, 1061.0)
    assert expired["broken"]["user"] == "alice" and expired["broken"]["reason"] == "expired"
    assert "Took over" in expired["warnings"][0]
    broken = lock.take(FakeModule(holder={"user": "carol"}, break_lock=True), path, 1062.0)
    assert broken["broken"]["user"] == "bob" and broken["broken"]["reason"] == "broken on request"
    assert json.loads((tmp_path / "deploy.lock").read_text())["user"] == "carol"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deploy.lock"]  # the broken ones are gone


def test_release_appends_history_and_leaves_another_holders_lock(tmp_path):
    lock = _lock()
    path, history = str(tmp_path / "deploy.lock"), str(tmp_path / "deploys.jsonl")
    mine = lock.take(FakeModule(holder={"user": "alice"}), path, 1000.0)
    record = {"action": "deploy", "release": "r1", "result": "ok"}
    released = lock.release(FakeModule(token=mine["token"], history=history, record=record), path, 1012.5)
    assert released["entry"]["duration"] == 12.5
    assert not (tmp_path / "deploy.lock").exists()
    theirs = lock.take(FakeModule(holder={"user": "bob"}), path, 2000.0)
    kept = lock.release(FakeModule(token=mine["token"], history=history, record={**record, "result": "failed"}),
                        path, 2001.0)
    assert (tmp_path / "deploy.lock").exists() and "not this run's lock" in kept["warnings"][0]
    assert json.loads((tmp_path / "deploy.lock").read_text())["token"] == theirs["token"]
    lines = [json.loads(line) for line in (tmp_path / "deploys.jsonl").read_text().splitlines()]
    assert [(e["result"], "duration" in e) for e in lines] == [("ok", True), ("failed", False)]
    assert oct((tmp_path / "deploys.jsonl").stat().st_mode & 0o777) == "0o640"


def test_no_link_is_followed_to_the_lock_or_the_history(tmp_path):
    """Root takes the lock and appends the history in the app's tree: a link planted
    for the lock, the history or a directory above them is refused, naming it, and
    what it points at is left exactly as it was."""
    lock = _lock()
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o700)
    victim = outside / "victim"
    victim.write_text("untouched\n")
    victim.chmod(0o600)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o750)
    (shared / "deploy.lock").symlink_to(victim)
    with pytest.raises(lock.Refused, match=f"{shared / 'deploy.lock'} is a link"):
        lock.take(FakeModule(holder={"user": "alice"}), str(shared / "deploy.lock"), 1000.0)
    (shared / "deploy.lock").unlink()
    mine = lock.take(FakeModule(holder={"user": "alice"}), str(shared / "deploy.lock"), 1000.0)
    (shared / "deploys.jsonl").symlink_to(victim)
    with pytest.raises(lock.Refused, match=f"{shared / 'deploys.jsonl'} is a link"):
        lock.release(FakeModule(token=mine["token"], history=str(shared / "deploys.jsonl"), record={"a": 1}),
                     str(shared / "deploy.lock"), 1001.0)
    swapped = tmp_path / "swapped"
    swapped.symlink_to(outside)
    with pytest.raises(lock.Refused, match=f"{swapped} is a link \\(to {outside}\\)"):
        lock.take(FakeModule(holder={"user": "bob"}), str(swapped / "deploy.lock"), 1000.0)
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    with pytest.raises(lock.Refused, match=f"{open_dir} \\(mode 0777\\) can be changed by its group or others"):
        lock.take(FakeModule(holder={"user": "bob"}), str(open_dir / "deploy.lock"), 1000.0)
    assert victim.read_text() == "untouched\n" and victim.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in outside.iterdir()) == ["victim"] and not list(open_dir.iterdir())


def test_controller_names_user_host_and_pid():
    sys.path.insert(0, str(REPO / "plugins" / "lookup"))
    from controller import describe  # noqa: PLC0415
    who = describe()
    assert who["user"] and who["controller"] and isinstance(who["pid"], int)


def test_argv_splits_like_a_shell_without_expanding():
    assert argv("db current") == ["db", "current"]
    assert argv("""shell -c 'print("a b")' $HOME *;""") == ["shell", "-c", 'print("a b")', "$HOME", "*;"]
    for bad in ("", "   ", 'db "current', 42):
        with pytest.raises(AnsibleFilterError):
            argv(bad)


def test_history_and_release_list_read_well():
    lines = [json.dumps({"time": "2026-11-27T01:00:00Z", "action": "deploy", "release": "r2", "result": "failed",
                         "duration": 3.2, "user": "alice", "controller": "laptop", "source": "/src/app",
                         "error": "not ready"}),
             json.dumps({"time": "2026-11-27T01:01:00Z", "action": "deploy", "release": "r1", "result": "ok",
                         "switched": False, "duration": 1, "user": "alice", "controller": "laptop",
                         "source": "git@x:app.git@v1", "commit": "0123456789abcdef"}),
             "garbage"]
    assert deploy_history(lines) == [
        "2026-11-27T01:00:00Z deploy r2 FAILED in 3.2 s by alice@laptop from /src/app: not ready",
        "2026-11-27T01:01:00Z deploy r1 (unchanged) OK in 1 s by alice@laptop from git@x:app.git@v1 (0123456789ab)",
        "(not JSON) garbage"]
    assert release_list(["r2", "r1", "r3"], "r2", ["r1", "r2"]) == [
        "r1 (ready once)", "r2 (LIVE, ready once)", "r3 (never ready)"]


def test_cidr():
    for good in ("10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32", "0.0.0.0/0"):
        assert is_cidr(good), good
    for bad in ("10.0.0.1/8", "10.0.0.0", "10.0.0.0/33", "office", " 10.0.0.0/8", None, 10):
        assert not is_cidr(bad), bad
