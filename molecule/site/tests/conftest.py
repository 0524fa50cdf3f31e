"""Fixtures shared by the site scenario's test modules."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.environ["FLASKSTACK_HARNESS"])
from testlib import only_on  # noqa: E402

# Deploy drills test the orchestration (candidate gate, rollback, git versions,
# settings that switch with code), which is the same on every Debian release:
# they run on one host. The other host keeps every test whose subject depends on
# its release - Python, packages, systemd, nginx, the restart under load.
DRILL_HOST = "site-trixie"


@pytest.fixture(scope="module")
def drill(host):
    only_on(host, DRILL_HOST, "deploy drill: the orchestration")
