#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""systemd-analyze security as a check: every role that sandboxes a unit asks it the same way."""

from __future__ import annotations

DOCUMENTATION = r"""
module: systemd_exposure
short_description: Measure units' sandbox with systemd-analyze security and enforce a limit
description:
  - Runs C(systemd-analyze security) once for all I(units) and reads each unit's overall
    exposure level (0.0 is fully sandboxed, 10.0 is none at all).
  - Fails, naming every unit above I(max_exposure) and its figure, so a drop-in or a systemd
    upgrade that loosens a sandbox stops the play.
  - Only reads; never reports a change. Reload systemd first (C(daemon_reload)) when a unit file
    or drop-in was just written, or the figure is that of the previous version.
version_added: 1.0.0
author: flaskstack.deploy contributors
options:
  units:
    description: Unit names to measure, with their suffix (C(nginx.service)).
    type: list
    elements: str
    required: true
  max_exposure:
    description: Highest exposure accepted for every unit.
    type: float
    required: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Check the sandbox of nginx
  flaskstack.deploy.systemd_exposure:
    units: [nginx.service]
    max_exposure: 5.0
"""

RETURN = r"""
exposure:
  description: Each unit's overall exposure level.
  returned: success
  type: dict
  sample: {"nginx.service": 2.6}
"""

import re

from ansible.module_utils.basic import AnsibleModule

OVERALL = re.compile(r"Overall exposure level for (\S+): ([0-9.]+)")


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "units": {"type": "list", "elements": "str", "required": True},
            "max_exposure": {"type": "float", "required": True},
        },
        supports_check_mode=True,
    )
    units = module.params["units"]
    rc, out, err = module.run_command(["systemd-analyze", "security", "--no-pager", *units])
    exposure = {unit: float(level) for unit, level in OVERALL.findall(out)}
    missing = [unit for unit in units if unit not in exposure]
    if rc != 0 or missing:
        module.fail_json(msg=f"systemd-analyze security could not measure {', '.join(missing or units)}: {err.strip()}",
                         rc=rc, stdout=out, stderr=err)
    limit = module.params["max_exposure"]
    above = {unit: level for unit, level in exposure.items() if level > limit}
    if above:
        module.fail_json(
            msg="systemd-analyze exposure above the limit {}: {} - did a drop-in loosen the sandbox?".format(
                limit, ", ".join(f"{unit} {level}" for unit, level in above.items())),
            exposure=exposure)
    module.exit_json(changed=False, exposure=exposure,
                     msg=", ".join(f"{unit} {level}" for unit, level in exposure.items()) + f" (limit {limit})")


if __name__ == "__main__":
    main()
