"""Unit tests for the collection's Jinja test plugins."""

import base64
import struct
import sys

from conftest import REPO

sys.path.insert(0, str(REPO / "plugins" / "test"))
from host import is_container  # noqa: E402
from validators import is_ssh_public_key, is_timezone  # noqa: E402


def _blob(key_type: str, payload: bytes = b"\x00" * 32) -> str:
    raw = struct.pack(">I", len(key_type)) + key_type.encode() + struct.pack(">I", len(payload)) + payload
    return base64.b64encode(raw).decode()


def test_known_time_zones():
    assert is_timezone("Etc/UTC")
    assert is_timezone("Europe/Berlin")
    assert is_timezone("America/Argentina/Buenos_Aires")


def test_unknown_time_zones():
    assert not is_timezone("Mars/Olympus_Mons")
    assert not is_timezone("Europe/Berlin ")
    assert not is_timezone("../../etc/passwd")
    assert not is_timezone("")
    assert not is_timezone(42)


def test_well_formed_keys():
    assert is_ssh_public_key(f"ssh-ed25519 {_blob('ssh-ed25519')} ops@example.com")
    assert is_ssh_public_key(f"ssh-ed25519 {_blob('ssh-ed25519')}")
    assert is_ssh_public_key(f"ecdsa-sha2-nistp256 {_blob('ecdsa-sha2-nistp256')} a comment with spaces")


def test_malformed_keys():
    ed = _blob("ssh-ed25519")
    assert not is_ssh_public_key("ssh-ed25519")  # no blob
    assert not is_ssh_public_key("ssh-ed25519 not*base64")
    assert not is_ssh_public_key(f"ssh-rsa {ed}")  # blob of another type
    assert not is_ssh_public_key(f"ssh-dss {_blob('ssh-dss')}")  # obsolete type
    assert not is_ssh_public_key(f"ssh-ed25519 {ed}\nssh-ed25519 {ed}")  # two keys
    assert not is_ssh_public_key("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert not is_ssh_public_key(None)


def test_container_detection():
    assert is_container({"virtualization_role": "guest", "virtualization_type": "docker"})
    assert is_container({"virtualization_role": "guest", "virtualization_type": "lxc"})
    assert not is_container({"virtualization_role": "guest", "virtualization_type": "kvm"})
    assert not is_container({"virtualization_role": "host", "virtualization_type": "docker"})
    assert not is_container({})
    assert not is_container(None)
