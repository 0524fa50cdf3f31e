# Copyright: flaskstack.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ansible.builtin.copy that makes no call to the host for a file already in place.

The same as flaskstack.deploy.template (see there) for ``content`` and for a
single file ``src`` of the role; a directory, ``remote_src`` or any option
the comparison does not understand is ansible.builtin.copy, unchanged.
"""

from __future__ import annotations

import json
import os

from ansible.plugins.action.copy import ActionModule as CopyAction

from ansible_collections.flaskstack.deploy.plugins.plugin_utils.known_files import KnownFilesAction


class ActionModule(KnownFilesAction, CopyAction):
    """flaskstack.deploy.copy: ansible.builtin.copy plus ``known``."""

    def _known_data(self, args: dict, task_vars: dict):
        """The bytes the builtin action would write, or None when it is not a plain file."""
        if args.get("content") is not None:
            content = args["content"]
            return json.dumps(content) if isinstance(content, (dict, list)) else content
        src = args.get("src")
        if not isinstance(src, str) or src.endswith(os.path.sep):
            return None
        try:
            path = self._find_needle("files", src)
        except Exception:  # noqa: BLE001 - not found: the builtin action reports it
            return None
        if not os.path.isfile(path):
            return None
        with open(path, "rb") as handle:  # a vaulted file differs as it is: the builtin action decrypts
            return handle.read()
