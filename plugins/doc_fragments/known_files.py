# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options shared by flaskstack.deploy.template and flaskstack.deploy.copy."""

from __future__ import annotations


class ModuleDocFragment:
    """The options their comparison with the role's read accounts for."""

    DOCUMENTATION = r"""
options:
  dest:
    description: Path on the host.
    type: path
    required: true
  known:
    description: The C(files) returned by M(flaskstack.deploy.host_state) for paths including I(dest).
    type: dict
  owner:
    description: Owner name.
    type: str
  group:
    description: Group name.
    type: str
  mode:
    description: Octal mode (C("0644")); a symbolic mode is passed on and never compared.
    type: raw
  follow:
    description: Write through a link at I(dest).
    type: bool
    default: false
  validate:
    description: Command checking the new file (C(%s)) before it replaces I(dest).
    type: str
  backup:
    description: Keep a copy of the replaced file.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""
