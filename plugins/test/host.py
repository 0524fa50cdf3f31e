# Copyright: flaskstack.deploy contributors
# MIT License (see galaxy.yml)
"""Jinja tests about the managed host, shared by the roles."""

from __future__ import annotations

_CONTAINER_TYPES = frozenset({"docker", "podman", "container", "containerd", "lxc", "systemd-nspawn", "openvz"})


def is_container(facts) -> bool:
    """True when the facts describe a container guest (the kernel belongs to another host)."""
    if not isinstance(facts, dict):
        return False
    return (
        facts.get("virtualization_role") == "guest"
        and facts.get("virtualization_type") in _CONTAINER_TYPES
    )


class TestModule:
    """Jinja tests: ``ansible_facts is flaskstack.deploy.container``."""

    def tests(self):
        return {"container": is_container}
