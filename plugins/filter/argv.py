# Copyright: flaskstack.deploy contributors
# MIT License (see galaxy.yml)
"""A command line split into argv with shell-like quoting, never run by a shell."""

from __future__ import annotations

import shlex

from ansible.errors import AnsibleFilterError


def argv(value):
    """'db current' -> ['db', 'current']; quotes group words as in a POSIX shell, but nothing is
    expanded ($, *, ~, ;, | stay literal arguments). Fails naming the value when it cannot be split
    or is empty."""
    if not isinstance(value, str):
        raise AnsibleFilterError(f"argv needs a string, got {type(value).__name__}: {value!r}")
    try:
        words = shlex.split(value, comments=False, posix=True)
    except ValueError as error:
        raise AnsibleFilterError(f"{value!r} cannot be split into arguments: {error}") from error
    if not words:
        raise AnsibleFilterError(f"{value!r} holds no arguments")
    return words


class FilterModule:
    """flaskstack.deploy argv filter."""

    def filters(self):
        return {"argv": argv}
