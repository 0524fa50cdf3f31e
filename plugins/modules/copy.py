#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the flaskstack.deploy.copy action (plugins/action/copy.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: copy
short_description: ansible.builtin.copy that makes no call to the host for a file already in place
description:
  - M(ansible.builtin.copy) with one more option, I(known), the registered C(files) of a
    M(flaskstack.deploy.host_state) read of the role's files.
  - When I(content), or the single file I(src) of the role, has exactly the checksum of the file
    on the host and its I(mode), I(owner) and I(group) are the ones asked for, the task is C(ok)
    without a call to the host. Anything else (a difference, a path the read did not cover, a
    directory, C(remote_src), an option other than those below, a link that would be replaced)
    is M(ansible.builtin.copy) itself, so a file changed by hand is still put back.
  - Every option of M(ansible.builtin.copy) is accepted and passed on.
version_added: 1.0.0
author: flaskstack.deploy contributors
extends_documentation_fragment: [flaskstack.deploy.known_files]
options:
  src:
    description: File of the role (C(files/)), as M(ansible.builtin.copy) finds it.
    type: path
  content:
    description: The file's content, instead of I(src).
    type: raw
"""

EXAMPLES = r"""
- name: Read the files this role writes (read-only)
  flaskstack.deploy.host_state:
    files: [/etc/issue]
  register: files_read

- name: Show the legal banner
  flaskstack.deploy.copy:
    content: "Authorised use only.\n"
    dest: /etc/issue
    owner: root
    group: root
    mode: "0644"
    known: "{{ files_read.files | default({}) }}"
"""

RETURN = r"""
dest:
  description: Path on the host.
  returned: success
  type: str
checksum:
  description: SHA-1 of the file's content.
  returned: success
  type: str
"""
