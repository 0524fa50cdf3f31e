# Copyright: flaskstack.deploy contributors
# MIT License (see galaxy.yml)
"""Who runs this playbook, from where: the controller's user, host name and ansible-playbook PID."""

from __future__ import annotations

DOCUMENTATION = r"""
name: controller
author: flaskstack.deploy contributors
short_description: The controller's user, host name and ansible-playbook process id
description:
  - Returns one dict C({user, controller, pid}) describing the run, for records on the managed hosts
    (the deploy lock and history of M(flaskstack.deploy.deploy_lock)).
  - C(user) is the login name of the controller process's user (C($USER) is not trusted, CI runners
    and sudo leave it unset or stale), C(controller) the controller's host name, C(pid) the
    ansible-playbook process (the parent of the worker that runs the lookup).
"""

EXAMPLES = r"""
- name: Describe the run
  ansible.builtin.debug:
    msg: "{{ lookup('flaskstack.deploy.controller') }}"
"""

RETURN = r"""
_raw:
  description: One dict with C(user), C(controller) and C(pid).
  type: list
  elements: dict
"""

import multiprocessing
import os
import pwd
import socket

from ansible.plugins.lookup import LookupBase


def describe() -> dict:
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = os.environ.get("USER") or str(os.getuid())
    parent = multiprocessing.parent_process()
    return {"user": user, "controller": socket.gethostname(),
            "pid": parent.pid if parent is not None else os.getpid()}


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        return [describe()]
