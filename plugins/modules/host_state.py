#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One read of what a role manages on a host, so what is already right needs no call of its own."""

from __future__ import annotations

DOCUMENTATION = r"""
module: host_state
short_description: Read files, systemd units and packages a role manages, in one call
description:
  - Reads, for each of I(files), following links as M(ansible.builtin.stat) with C(follow=true) does,
    its SHA-1 checksum, mode, owner and group, and whether the path itself is a link.
  - Reads each of I(units) with one C(systemctl show) and names what holds for it, C(active)
    and C(enabled).
  - Names which of I(packages) are not installed (C(dpkg-query)).
  - Meant to be registered once per role, before its package installation. The role passes the
    C(files) to M(flaskstack.deploy.template) and M(flaskstack.deploy.copy) as C(known) (a file
    already in place then costs no call to the host) and guards its M(ansible.builtin.apt) and
    M(ansible.builtin.systemd_service) tasks with the rest, so they run only where the read says
    they must.
  - Only reads; never reports a change. A unit or package it cannot read is reported as not
    active, not enabled or missing, so the guarded task acts.
version_added: 1.0.0
author: flaskstack.deploy contributors
options:
  files:
    description: Absolute paths of files; missing ones are reported as not existing.
    type: list
    elements: path
    default: []
  units:
    description: systemd unit names, with their suffix.
    type: list
    elements: str
    default: []
  packages:
    description: Debian package names.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Read what the role manages (read-only)
  flaskstack.deploy.host_state:
    files: [/etc/fail2ban/jail.d/50-flaskstack.local]
    units: [fail2ban.service]
    packages: [fail2ban]
  register: state_read

- name: Install fail2ban
  ansible.builtin.apt:
    name: fail2ban
  when: state_read.missing_packages | default(['fail2ban']) | length > 0
"""

RETURN = r"""
files:
  description: Path to its state.
  returned: success
  type: dict
  sample:
    /etc/fail2ban/jail.d/50-flaskstack.local:
      exists: true
      isreg: true
      islnk: false
      checksum: 0f3a1c...
      mode: "0644"
      owner: root
      group: root
units:
  description: Unit name to the words that hold for it (C(active), C(enabled)).
  returned: success
  type: dict
  sample: {"fail2ban.service": ["active", "enabled"], "dbus.service": ["active"]}
missing_packages:
  description: The asked packages that are not installed, in the order asked.
  returned: success
  type: list
  elements: str
  sample: []
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
    """What the template and copy actions compare: content, mode, owner, group, and the link itself."""
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


def unit_states(text: str) -> dict:
    """{unit: ['active', 'enabled']} from `systemctl show -p Id,ActiveState,UnitFileState`,
    with only the words that hold (activating, failed, static or disabled units get fewer)."""
    states: dict = {}
    for block in (text or "").split("\n\n"):
        fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if fields.get("Id"):
            states[fields["Id"]] = [word for word, holds in (
                ("active", fields.get("ActiveState") == "active"),
                ("enabled", fields.get("UnitFileState") == "enabled"),
            ) if holds]
    return states


def installed_packages(text: str) -> set:
    """Names dpkg reports as installed ('ii') in `dpkg-query -W -f '${Package}\\t${db:Status-Abbrev}\\n'`."""
    names = set()
    for line in (text or "").splitlines():
        name, _, status = line.partition("\t")
        if status.startswith("ii"):
            names.add(name)
    return names


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "list", "elements": "path", "default": []},
            "units": {"type": "list", "elements": "str", "default": []},
            "packages": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    units, packages = module.params["units"], module.params["packages"]
    unit_read = ""
    if units:
        # a unit systemd does not know is listed as not found (inactive): the caller acts
        _rc, unit_read, _err = module.run_command(
            ["systemctl", "show", "--property=Id,ActiveState,UnitFileState", "--", *units])
    package_read = ""
    if packages:
        # exits 1 when a name is unknown to dpkg; the others are still listed
        _rc, package_read, _err = module.run_command(
            ["dpkg-query", "--show", "--showformat=${Package}\\t${db:Status-Abbrev}\\n", "--", *packages])
    installed = installed_packages(package_read)
    module.exit_json(
        changed=False,
        files={path: file_state(path) for path in module.params["files"]},
        units=unit_states(unit_read),
        missing_packages=[name for name in packages if name not in installed],
    )


if __name__ == "__main__":
    main()
