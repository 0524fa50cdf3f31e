# Copyright: flaskstack.deploy contributors
# MIT License (see galaxy.yml)
"""Jinja tests used by role preflight checks to reject bad input before any change."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import struct

_SSH_KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)
_TZ_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$")


def _known_timezones() -> frozenset[str]:
    try:
        import zoneinfo  # Python >= 3.9
    except ImportError:  # pragma: no cover - controller Pythons are newer
        return frozenset()
    return frozenset(zoneinfo.available_timezones())


def is_timezone(value) -> bool:
    """True when value is a time zone name the controller's tz database knows."""
    if not isinstance(value, str) or not _TZ_NAME.match(value):
        return False
    if value in ("UTC", "Etc/UTC"):
        return True
    return value in _known_timezones()


def is_ssh_public_key(value) -> bool:
    """True when value is one OpenSSH public key line whose blob matches its type."""
    if not isinstance(value, str) or "\n" in value.strip():
        return False
    parts = value.strip().split(None, 2)
    if len(parts) < 2 or parts[0] not in _SSH_KEY_TYPES:
        return False
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(blob) < 4:
        return False
    (length,) = struct.unpack(">I", blob[:4])
    return blob[4 : 4 + length].decode("ascii", "replace") == parts[0] and len(blob) > 4 + length


def is_cidr(value) -> bool:
    """True when value is an IPv4 or IPv6 network written ADDRESS/PREFIX with no host bits set
    (10.0.0.0/8, 192.0.2.7/32, 2001:db8::/32)."""
    if not isinstance(value, str) or "/" not in value or value != value.strip():
        return False
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        return False
    return True


class TestModule:
    """Jinja tests: ``x is flaskstack.deploy.timezone``, ``.ssh_public_key``, ``.cidr``."""

    def tests(self):
        return {
            "timezone": is_timezone,
            "ssh_public_key": is_ssh_public_key,
            "cidr": is_cidr,
        }
