# Copyright: flaskstack.deploy contributors
# MIT License (see galaxy.yml)
"""Filters that read a pip requirements file before a deploy installs it."""

from __future__ import annotations

import re

# name[extras] == version [; marker]
_PINNED = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,\s-]*\])?\s*===?\s*[A-Za-z0-9][A-Za-z0-9.+!*_-]*\s*(;.*)?$"
)
_DIRECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,\s-]*\])?\s*@\s*\S+")
_REPORTED_OPTIONS = ("-r", "--requirement", "-c", "--constraint", "-e", "--editable")


def _logical_lines(text: str):
    """(first line number, joined text) for each logical line, comments removed."""
    start, parts = None, []
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if start is None:
            start = number
        if line.endswith("\\"):
            parts.append(line[:-1])
            continue
        parts.append(line)
        joined = " ".join(p.strip() for p in parts).strip()
        if joined:
            yield start, joined
        start, parts = None, []
    if parts:
        joined = " ".join(p.strip() for p in parts).strip()
        if joined:
            yield start, joined


def unpinned_requirements(text) -> list[str]:
    """'line N: requirement' for every requirement that is not pinned to one version."""
    problems = []
    for number, line in _logical_lines(str(text)):
        requirement = re.split(r"\s+--?[a-z]", " " + line, maxsplit=1)[0].strip() if not line.startswith("-") else ""
        if line.startswith("-"):
            option = line.split(None, 1)[0].split("=", 1)[0]
            if option in _REPORTED_OPTIONS:
                problems.append(f"line {number}: {line}")
            continue
        if not (_PINNED.match(requirement) or _DIRECT.match(requirement)):
            problems.append(f"line {number}: {requirement}")
    return problems


def has_hashes(text) -> bool:
    """True when any requirement carries a --hash (pip then checks every one)."""
    return any("--hash=" in line or "--hash " in line for _, line in _logical_lines(str(text)))


class FilterModule:
    """flaskstack.deploy requirements filters."""

    def filters(self):
        return {"unpinned_requirements": unpinned_requirements, "requirements_have_hashes": has_hashes}
