# Copyright: flaskstack.deploy contributors
# MIT License (see galaxy.yml)
"""Filter that says, in one line, what a readiness request got back."""

from __future__ import annotations

import json


def describe_answer(result, limit: int = 300) -> str:
    """'STATUS body' of a registered ansible.builtin.uri result, or its error."""
    if not isinstance(result, dict):
        return "none"
    status = result.get("status", -1)
    if status is None or int(status) < 0:
        return "no answer: " + " ".join(str(result.get("msg", "")).split())[:limit]
    if isinstance(result.get("json"), (dict, list)):
        body = json.dumps(result["json"], sort_keys=True)
    else:
        body = " ".join(str(result.get("content", "")).split())
    location = f" -> {result['location']}" if result.get("location") else ""
    return f"{status}{location} {body[:limit]}".strip()


class FilterModule:
    """flaskstack.deploy health filters."""

    def filters(self):
        return {"describe_answer": describe_answer}
