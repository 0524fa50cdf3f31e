#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A per-host deploy lock taken atomically, and the deploy history written when it is released."""

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_lock
short_description: Take or release a host's deploy lock; append the deploy history on release
description:
  - C(state=present) creates I(path) with C(O_CREAT|O_EXCL) (one system call, so of two runs that try
    at once exactly one gets the lock) and writes I(holder) into it as JSON, with the host's time
    (C(since), C(since_epoch)) and a random C(token) that only this holder knows.
  - When I(path) exists, the lock is held by someone else and the module fails, naming the holder, the
    time it was taken and what for, unless it is older than I(expiry) seconds or I(break_lock) is
    true; then the old lock is renamed away (C(rename) is atomic too, so of two runs breaking the same
    lock one renames it and the other finds it gone) and taken anew. The module returns the lock it
    broke as C(broken) and says so in a warning.
  - C(state=absent) removes I(path) only when it holds I(token) (a run whose lock was broken never
    removes the next holder's lock) and, when I(record) is given, first appends it as one JSON line to
    I(history) (created root-owned, mode 0640), adding C(duration) (seconds since the lock was taken)
    when the lock was this run's.
  - A run that is killed leaves the lock; it expires after I(expiry) seconds or is broken explicitly.
  - No link is followed - the module runs as root in a tree an app may share. The directories of
    I(path) and I(history) are opened component by component with C(O_NOFOLLOW), and each must be
    owned by root (or the user the module runs as) and not writable by group or others (unless
    sticky, as C(/tmp)); the files are opened with C(O_NOFOLLOW) under those directories. A link or
    a directory someone else could change fails the module, naming the path, before anything is written.
version_added: 1.1.0
author: flaskstack.deploy contributors
options:
  path:
    description: The lock file.
    type: path
    required: true
  state:
    description: C(present) takes the lock, C(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  holder:
    description: Who takes the lock and what for (written into it; shown to a run that finds it held).
    type: dict
    default: {}
  expiry:
    description: Seconds after which a lock is stale and taken over (C(state=present)).
    type: int
    default: 1800
  break_lock:
    description: Take the lock even when a live one is held (C(state=present)).
    type: bool
    default: false
  token:
    description: The token C(state=present) returned; C(state=absent) removes only a lock holding it.
    type: str
    default: ''
  history:
    description: JSON-lines file I(record) is appended to (C(state=absent)).
    type: path
  record:
    description: One history entry (C(state=absent)); empty = no entry.
    type: dict
    default: {}
attributes:
  check_mode:
    support: none
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Take the deploy lock
  flaskstack.deploy.deploy_lock:
    path: /srv/app/shared/deploy.lock
    holder: {user: alice, action: deploy, source: /home/alice/app}
    expiry: 1800
  register: lock

- name: Release the deploy lock and record the deploy
  flaskstack.deploy.deploy_lock:
    path: /srv/app/shared/deploy.lock
    state: absent
    token: "{{ lock.token }}"
    history: /srv/app/shared/deploys.jsonl
    record: {action: deploy, release: 20261127T010000Z-0123456789ab-01234567, result: ok}
"""

RETURN = r"""
lock:
  description: What the lock file holds (C(state=present)), the token left out.
  returned: success
  type: dict
token:
  description: The secret of this holder, for C(state=absent).
  returned: state=present
  type: str
broken:
  description: The stale or explicitly broken lock that was taken over, or null.
  returned: state=present
  type: dict
held_by:
  description: The lock that made the module fail (someone else holds it).
  returned: failure
  type: dict
entry:
  description: The history line written (C(state=absent) with I(record)).
  returned: when written
  type: dict
"""

import datetime
import errno
import json
import os
import secrets
import stat
import time

from ansible.module_utils.basic import AnsibleModule


class Refused(Exception):
    """A path the module will not use as root: a link, or a directory someone else can change."""


def _open_dir(directory):
    """An fd of DIRECTORY, opened from / one component at a time without following a link;
    every component root's (or ours) and not writable by group or others unless sticky."""
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    walked = ""
    try:
        for part in [p for p in os.path.abspath(directory).split("/") if p]:
            walked += "/" + part
            try:
                next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR) and stat.S_ISLNK(
                        os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                    raise Refused(f"{walked} is a link (to {os.readlink(part, dir_fd=fd)}), "
                                  "not a directory: refusing to follow it") from error
                raise
            os.close(fd)
            fd = next_fd
            info = os.fstat(fd)
            if info.st_uid not in (0, os.geteuid()):
                raise Refused(f"{walked} is owned by uid {info.st_uid}, not root: refusing to use it")
            if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
                raise Refused(f"{walked} (mode {stat.S_IMODE(info.st_mode):04o}) can be changed by its "
                              "group or others: refusing to use it")
        return fd
    except BaseException:
        os.close(fd)
        raise


class _Place:
    """A file name in a directory opened by _open_dir (used through dir_fd, never by path)."""

    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)
        self.dir_fd = _open_dir(os.path.dirname(path) or ".")

    def open(self, flags, mode=0o640):
        try:
            return os.open(self.name, flags | os.O_NOFOLLOW, mode, dir_fd=self.dir_fd)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise Refused(f"{self.path} is a link: refusing to follow it") from error
            raise

    def close(self):
        os.close(self.dir_fd)


def _read(place):
    try:
        fd = place.open(os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        with os.fdopen(fd, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        # unreadable or half-written: judge it by the file's age
        try:
            return {"since_epoch": os.stat(place.name, dir_fd=place.dir_fd, follow_symlinks=False).st_mtime,
                    "unreadable": True}
        except FileNotFoundError:
            return None


def _public(lock):
    return {key: value for key, value in (lock or {}).items() if key != "token"}


def _utc(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _describe(lock, now):
    age = int(now - float(lock.get("since_epoch", now)))
    what = " ".join(str(lock[key]) for key in ("action", "target") if lock.get(key))
    return (f"{lock.get('user', '?')}@{lock.get('controller', '?')} (ansible-playbook pid {lock.get('pid', '?')}) "
            f"since {lock.get('since', '?')} ({age} s ago) for {what or '?'}")


def take(module, path, now):
    place = _Place(path)
    try:
        return _take(module, place, now)
    finally:
        place.close()


def _take(module, place, now):
    path = place.path
    holder = dict(module.params["holder"])
    token = secrets.token_hex(16)
    lock = {**holder, "since": _utc(now), "since_epoch": now, "token": token}
    broken = None
    for _attempt in range(3):
        try:
            fd = place.open(os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            if stat.S_ISLNK(os.stat(place.name, dir_fd=place.dir_fd, follow_symlinks=False).st_mode):
                raise Refused(f"{path} is a link: refusing to follow it") from None
            held = _read(place)
            if held is None:
                continue  # released meanwhile: try again
            age = now - float(held.get("since_epoch", now))
            if not (module.params["break_lock"] or age > module.params["expiry"]):
                module.fail_json(
                    msg=(f"The deploy lock {path} is held by {_describe(held, now)}; this run changes nothing. "
                         f"It expires {int(module.params['expiry'] - age)} s from now; if that run is dead, "
                         "break the lock with -e flask_app_deploy_lock_break=true."),
                    held_by=_public(held))
            stale = f"{place.name}.broken-{int(now)}-{secrets.token_hex(4)}"
            try:
                os.rename(place.name, stale, src_dir_fd=place.dir_fd, dst_dir_fd=place.dir_fd)
            except FileNotFoundError:
                continue  # another run broke it first: race for the new lock
            os.unlink(stale, dir_fd=place.dir_fd)
            broken = {**_public(held), "reason": "broken on request" if module.params["break_lock"] else "expired"}
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(lock, handle, sort_keys=True)
            handle.write("\n")
        result = {"changed": True, "lock": _public(lock), "token": token, "broken": broken}
        if broken:
            result["warnings"] = [f"Took over the deploy lock {path} held by {_describe(broken, now)}: {broken['reason']}"]
        return result
    module.fail_json(msg=f"Could not take the deploy lock {path}: other runs keep taking it")
    return None


def release(module, path, now):
    place = _Place(path)
    try:
        return _release(module, place, now)
    finally:
        place.close()


def _append(history, record):
    """One JSON line appended to HISTORY (a regular file, never through a link), mode 0640."""
    place = _Place(history)
    try:
        fd = place.open(os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise Refused(f"{history} is not a regular file: refusing to write it")
            handle.write(json.dumps(record, sort_keys=True) + "\n")
            os.fchmod(fd, 0o640)
    finally:
        place.close()


def _release(module, place, now):
    path = place.path
    held = _read(place)
    ours = bool(held) and held.get("token") == module.params["token"] and module.params["token"] != ""
    result = {"changed": False}
    record = dict(module.params["record"])
    if record:
        if ours:
            record.setdefault("duration", round(now - float(held["since_epoch"]), 1))
        history = module.params["history"]
        if not history:
            module.fail_json(msg="record needs history (the file to append it to)")
        _append(history, record)
        result.update(changed=True, entry=record)
    if ours:
        os.unlink(place.name, dir_fd=place.dir_fd)
        result["changed"] = True
    elif held:
        result["warnings"] = [f"{path} is not this run's lock any more (held by {_describe(held, now)}); left in place"]
    return result


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "holder": {"type": "dict", "default": {}},
            "expiry": {"type": "int", "default": 1800},
            "break_lock": {"type": "bool", "default": False},
            "token": {"type": "str", "default": "", "no_log": True},
            "history": {"type": "path"},
            "record": {"type": "dict", "default": {}},
        },
        supports_check_mode=False,
    )
    path = module.params["path"]
    now = time.time()
    try:
        if module.params["state"] == "present":
            result = take(module, path, now)
        else:
            result = release(module, path, now)
    except Refused as refused:
        module.fail_json(msg=f"{refused} (the deploy lock and history are written as root; nothing was written).")
        return
    warnings = result.pop("warnings", [])
    for warning in warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
