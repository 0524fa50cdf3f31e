# Copyright: flaskstack.deploy contributors
# MIT License (see galaxy.yml)
"""Filters for role inputs."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError


def with_defaults(items, defaults):
    """Each dict of a list input with the suboption defaults filled in (argument_specs
    validates suboptions but does not apply their defaults); a key the item sets wins."""
    if not isinstance(defaults, Mapping):
        raise AnsibleFilterError(f"with_defaults needs a dict of defaults, got {type(defaults).__name__}")
    result = []
    for index, item in enumerate(items or []):
        if not isinstance(item, Mapping):
            raise AnsibleFilterError(f"with_defaults: item {index} is a {type(item).__name__}, not a dict: {item!r}")
        result.append({**defaults, **item})
    return result


class FilterModule:
    """flaskstack.deploy input filters."""

    def filters(self):
        return {"with_defaults": with_defaults}
