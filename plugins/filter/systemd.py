# Copyright: flaskstack.deploy contributors
# MIT License (see galaxy.yml)
"""Filter that reads `systemctl show -p Id,ActiveState,UnitFileState` output."""

from __future__ import annotations


def unit_states(text) -> dict:
    """{unit: ['active', 'enabled']} with only the words that hold for each unit.

    A unit the read did not list maps to nothing (callers then act, as before
    the read existed); so does one that is activating, failed or disabled.
    """
    states: dict = {}
    for block in str(text or "").split("\n\n"):
        fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        unit = fields.get("Id")
        if not unit:
            continue
        states[unit] = [word for word, holds in (
            ("active", fields.get("ActiveState") == "active"),
            ("enabled", fields.get("UnitFileState") == "enabled"),
        ) if holds]
    return states


class FilterModule:
    """flaskstack.deploy systemd filters."""

    def filters(self):
        return {"unit_states": unit_states}
