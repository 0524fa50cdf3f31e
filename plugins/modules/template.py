#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the flaskstack.deploy.template action (plugins/action/template.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: template
short_description: ansible.builtin.template that makes no call to the host for a file already in place
description:
  - M(ansible.builtin.template) with one more option, I(known), the registered C(files) of a
    M(flaskstack.deploy.host_state) read of the role's files.
  - When the template rendered on the controller has exactly the checksum of the file on the host
    and its I(mode), I(owner) and I(group) are the ones asked for, the task is C(ok) without a
    call to the host (two calls otherwise, a stat and an attribute check). Anything else (a
    difference, a path the read did not cover, an option other than those below, a link that
    would be replaced) is M(ansible.builtin.template) itself, so a file changed by hand is still
    put back, validated first.
  - Every option of M(ansible.builtin.template) is accepted and passed on.
version_added: 1.0.0
author: flaskstack.deploy contributors
extends_documentation_fragment: [flaskstack.deploy.known_files]
options:
  src:
    description: Template file, found as M(ansible.builtin.template) finds it.
    type: path
    required: true
"""

EXAMPLES = r"""
- name: Read the files this role writes (read-only)
  flaskstack.deploy.host_state:
    files: [/etc/fail2ban/jail.d/50-flaskstack.local]
  register: files_read

- name: Configure fail2ban
  flaskstack.deploy.template:
    src: jail.local.j2
    dest: /etc/fail2ban/jail.d/50-flaskstack.local
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
