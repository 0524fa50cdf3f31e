# Copyright: flaskstack.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a file a task would write is already in place, per a role's one read of its files.

Shared by the flaskstack.deploy.template and flaskstack.deploy.copy actions. The
read is the ``files`` result of flaskstack.deploy.host_state. Anything this
cannot decide for certain answers False, so the builtin action runs.
"""

from __future__ import annotations

import re

from ansible.module_utils.common.text.converters import to_bytes
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.utils.hashing import secure_hash_s

# Options whose effect the comparison accounts for; any other one (a symbolic
# mode, attributes, SELinux context, directory_mode, remote_src, ...) means
# the builtin action decides.
COMPARED = frozenset({"src", "content", "dest", "owner", "group", "mode", "follow", "validate", "backup", "known"})
OCTAL = re.compile(r"^0?[0-7]{3,4}$")


def wanted_mode(mode) -> str | None:
    """'0644' for 0644, '644', '0644' and the int YAML makes of 0644; None when not comparable."""
    if isinstance(mode, int) and not isinstance(mode, bool):
        return "%04o" % mode
    if isinstance(mode, str) and OCTAL.match(mode):
        return "%04o" % int(mode, 8)
    return None


def in_place(args: dict, known, data) -> bool:
    """Whether the file at args['dest'], as read into KNOWN, already holds DATA (str or bytes)
    with the mode, owner and group ARGS ask for (those not asked for are not compared)."""
    if not isinstance(known, dict) or data is None or set(args) - COMPARED:
        return False
    state = known.get(args.get("dest"))
    if not isinstance(state, dict) or not (state.get("exists") and state.get("isreg")):
        return False
    if state.get("islnk") and not boolean(args.get("follow", False), strict=False):
        return False  # the builtin action would replace the link by a file
    if args.get("mode") is not None:
        mode = wanted_mode(args["mode"])
        if mode is None or mode != state.get("mode"):
            return False
    for key in ("owner", "group"):
        if args.get(key) is not None and str(args[key]) != state.get(key):
            return False
    return secure_hash_s(to_bytes(data, errors="surrogate_or_strict")) == state.get("checksum")


class KnownFilesAction:
    """Mixin in front of a builtin file action: ``known`` is taken out of the task's
    arguments, and when the subclass's ``_known_data`` (what the action would write)
    is already in place the task is ``ok`` without a call to the host; otherwise the
    builtin action runs as it is."""

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars if task_vars is not None else {}
        args = dict(self._task.args)
        known = self._task.args.pop("known", None)
        if known and args.get("dest") in known and in_place(args, known, self._known_data(args, task_vars)):
            return {
                "changed": False,
                "dest": args["dest"],
                "checksum": known[args["dest"]]["checksum"],
                "msg": "already in place (per the role's read of its files)",
            }
        return super().run(tmp, task_vars)

    def _known_data(self, args: dict, task_vars: dict):
        """What the action would write (str or bytes), or None when that cannot be known here."""
        raise NotImplementedError
