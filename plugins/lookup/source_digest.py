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
    order, skipping the directories named in I(skip_dirs) (at any depth) and the files ending in
    one of I(skip_suffixes). The same tree gives the same digest wherever it lives, so a deploy
    role can name releases by content and recognise one it already installed.
  - For a file (an archive), hashes its bytes.
options:
  _terms:
    description: Paths on the controller.
    required: true
    type: list
    elements: path
  skip_dirs:
    description: Directory names left out (caches, version control); the deploy passes the list it also leaves out of the release.
    type: list
    elements: str
    default: []
  skip_suffixes:
    description: File name endings left out (C(.pyc), ...).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Name the release by its content
  ansible.builtin.set_fact:
    release_digest: "{{ lookup('flaskstack.deploy.source_digest', '/path/to/app', skip_dirs=['.git', '__pycache__'], skip_suffixes=['.pyc']) }}"
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

def source_files(root: str, skip_dirs=(), skip_suffixes=()):
    """Relative paths of the files that make up the source, sorted."""
    skip_dirs, skip_suffixes = frozenset(skip_dirs), tuple(skip_suffixes)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in skip_dirs]
        for name in filenames:
            if not (skip_suffixes and name.endswith(skip_suffixes)):
                found.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(found)


def digest(path: str, skip_dirs=(), skip_suffixes=()) -> str:
    sha = hashlib.sha256()
    if os.path.isfile(path):
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                sha.update(chunk)
        return sha.hexdigest()
    if not os.path.isdir(path):
        raise AnsibleLookupError(f"source_digest: {path} is neither a directory nor a file")
    for rel in source_files(path, skip_dirs, skip_suffixes):
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
        skip_dirs, skip_suffixes = self.get_option("skip_dirs"), self.get_option("skip_suffixes")
        return [digest(os.path.expanduser(str(term)), skip_dirs, skip_suffixes) for term in terms]
