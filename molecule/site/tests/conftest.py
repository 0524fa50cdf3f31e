"""Fixtures shared by the site scenario's test modules."""

from __future__ import annotations

import pytest

# Deploy drills test the orchestration (candidate gate, rollback, git versions,
# settings that switch with code), which is the same on every Debian release:
# they run on one host. The other host keeps every test whose subject depends on
# its release - Python, packages, systemd, nginx, the restart under load.
DRILL_HOST = "site-trixie"


@pytest.fixture(scope="module")
def drill(host):
    if host.backend.get_hostname() != DRILL_HOST:
        pytest.skip(f"deploy drill: the orchestration is release-independent, run once on {DRILL_HOST}")
