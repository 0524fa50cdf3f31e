# Copyright: flaskstack.deploy contributors
# MIT License (see galaxy.yml)
"""Content digest of an app source (directory or archive) on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
name: source_digest
author: flaskstack.deploy contributors
short_description: SHA-256 of an app's source tree or archive on the controller
description:
  - For a directory, hashes every file's relative path, executable bit and content, in sorted
    order, skipping caches and version-control data (C(.git), C(__pycache__), C(*.pyc),
    C(.pytest_cache), C(.venv)). The same tree gives the same digest wherever it lives, so a
    deploy role can name releases by content and recognise one it already installed.
  - For a file (an archive), hashes its bytes.
options:
  _terms:
    description: Paths on the controller.
    required: true
    type: list
    elements: path
"""

EXAMPLES = r"""
- name: Name the release by its content
  ansible.builtin.set_fact:
    release_digest: "{{ lookup('flaskstack.deploy.source_digest', '/path/to/app') }}"
"""

RETURN = r"""
_raw:
  description: One lowercase hex SHA-256 digest per term.
  type: list
  elements: str
"""

import hashlib
import os
import stat

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

SKIP_DIRS = frozenset({".git", "__pycache__", ".pytest_cache", ".venv", ".mypy_cache", ".ruff_cache"})
SKIP_SUFFIXES = (".pyc", ".pyo")


def source_files(root: str):
    """Relative paths of the files that make up the source, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        for name in filenames:
            if not name.endswith(SKIP_SUFFIXES):
                found.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(found)


def digest(path: str) -> str:
    sha = hashlib.sha256()
    if os.path.isfile(path):
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                sha.update(chunk)
        return sha.hexdigest()
    if not os.path.isdir(path):
        raise AnsibleLookupError(f"source_digest: {path} is neither a directory nor a file")
    for rel in source_files(path):
        full = os.path.join(path, rel)
        mode = os.stat(full).st_mode
        sha.update(rel.encode("utf-8") + b"\0")
        sha.update(b"x" if mode & stat.S_IXUSR else b"-")
        with open(full, "rb") as handle:
            data = handle.read()
        sha.update(len(data).to_bytes(8, "big") + data)
    return sha.hexdigest()


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        return [digest(os.path.expanduser(str(term))) for term in terms]
