# Copyright: flaskstack.deploy contributors
# MIT License (see galaxy.yml)
"""The deploy history (JSON lines of flaskstack.deploy.deploy_lock) as lines a person reads."""

from __future__ import annotations

import json


def deploy_history(lines):
    """One readable line per JSON line, oldest first; a line that is not JSON is shown as it is."""
    out = []
    for line in lines or []:
        try:
            entry = json.loads(line)
        except ValueError:
            out.append(f"(not JSON) {line}")
            continue
        if not isinstance(entry, dict):
            out.append(f"(not an entry) {line}")
            continue
        release = entry.get("release") or "-"
        if entry.get("action") == "deploy" and entry.get("result") == "ok" and not entry.get("switched", True):
            release += " (unchanged)"
        text = (f"{entry.get('time', '?')} {entry.get('action', '?')} {release} {str(entry.get('result', '?')).upper()}"
                f" in {entry.get('duration', '?')} s by {entry.get('user', '?')}@{entry.get('controller', '?')}")
        if entry.get("source"):
            text += f" from {entry['source']}"
        if entry.get("commit"):
            text += f" ({entry['commit'][:12]})"
        if entry.get("error"):
            text += f": {entry['error'][:160]}"
        out.append(text)
    return out


def release_list(names, live="", ready=()):
    """Release names, oldest first, each marked LIVE (what current points at) and whether it
    answered ready once (only those are rollback targets)."""
    ready = set(ready or ())
    out = []
    for name in sorted(names or []):
        marks = (["LIVE"] if name == live else []) + (["ready once"] if name in ready else ["never ready"])
        out.append(f"{name} ({', '.join(marks)})")
    return out


class FilterModule:
    """flaskstack.deploy deploy_history filter."""

    def filters(self):
        return {"deploy_history": deploy_history, "release_list": release_list}
