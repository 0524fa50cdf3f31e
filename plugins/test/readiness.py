# Copyright: flaskstack.deploy contributors
# MIT License (see galaxy.yml)
"""Jinja test for the deploy's readiness gate."""

from __future__ import annotations


def is_ready_answer(result, gate) -> bool:
    """True when a registered ansible.builtin.uri result shows the release ready:
    an accepted status and, with a release key, that key naming the release."""
    if not isinstance(result, dict) or not isinstance(gate, dict):
        return False
    try:
        status = int(result.get("status", -1))
    except (TypeError, ValueError):
        return False
    if status not in {int(code) for code in gate.get("status_codes") or []}:
        return False
    key = gate.get("release_key") or ""
    if not key:
        return True
    data = result.get("json")
    return isinstance(data, dict) and str(data.get(key, "")) == str(gate.get("release", ""))


class TestModule:
    """flaskstack.deploy readiness test."""

    def tests(self):
        return {"ready_answer": is_ready_answer}
