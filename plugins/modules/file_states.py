#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One read of the files a role writes, so unchanged ones need no call of their own."""

from __future__ import annotations

DOCUMENTATION = r"""
module: file_states
short_description: Read the checksum, mode and ownership of many files in one call
description:
  - Reads each of I(paths) (following links, as M(ansible.builtin.stat) with C(follow=true) does)
    and returns its SHA-1 checksum, mode, owner and group, and whether the path itself is a link.
  - Meant to be registered once per role and passed to M(flaskstack.deploy.template) as C(known),
    which then renders each template on the controller and makes no call to the host when the
    file there is already exactly that, with the wanted mode and owner.
  - Only reads; never reports a change.
version_added: 1.0.0
author: flaskstack.deploy contributors
options:
  paths:
    description: Absolute paths of files; missing ones are reported as not existing.
    type: list
    elements: path
    required: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Read the files this role writes (read-only)
  flaskstack.deploy.file_states:
    paths: [/etc/fail2ban/jail.d/50-flaskstack.local]
  register: files_read
"""

RETURN = r"""
files:
  description: Path to its state.
  returned: success
  type: dict
  sample:
    /etc/fail2ban/jail.d/50-flaskstack.local:
      exists: true
      checksum: 0f3a1c...
      mode: "0644"
      owner: root
      group: root
      islnk: false
"""

import grp
import hashlib
import os
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule


def _name(lookup, ident: int) -> str:
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def file_state(path: str) -> dict:
    """What the template action compares: content, mode, owner, group, and the link itself."""
    try:
        info = os.stat(path)
    except OSError:
        return {"exists": False}
    state = {
        "exists": True,
        "islnk": os.path.islink(path),
        "isreg": stat.S_ISREG(info.st_mode),
        "mode": "%04o" % stat.S_IMODE(info.st_mode),
        "owner": _name(pwd.getpwuid, info.st_uid),
        "group": _name(grp.getgrgid, info.st_gid),
    }
    if state["isreg"]:
        digest = hashlib.sha1()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(65536), b""):
                digest.update(chunk)
        state["checksum"] = digest.hexdigest()
    return state


def main() -> None:
    module = AnsibleModule(
        argument_spec={"paths": {"type": "list", "elements": "path", "required": True}},
        supports_check_mode=True,
    )
    module.exit_json(changed=False, files={path: file_state(path) for path in module.params["paths"]})


if __name__ == "__main__":
    main()
