"""A minimal Debian host, as some images and hand-made VMs are: no openssh-server, D-Bus
installed but not running. The base role must install and start what the stack relies on
(before: "Destination directory /etc/ssh/sshd_config.d does not exist", and later the app's
migrations failed in systemd-run with "Failed to connect to bus").

Reached through docker exec rather than SSH: the host has no SSH server to begin with."""

from __future__ import annotations

import os

import yaml

from conftest import docker_exec, run, standalone_host, tail, tool

PLAYBOOK = """\
- name: Apply the base role to a minimal host
  hosts: all
  vars:
    # the base scenario's subject; here it would only add minutes
    base_security_upgrades_on_first_run: false
  tasks:
    - name: Apply flaskstack.deploy.base
      ansible.builtin.import_role:
        name: flaskstack.deploy.base
"""


def test_base_installs_and_starts_what_a_minimal_host_lacks(tmp_path):
    with standalone_host(f"flaskstack-minimal-{os.getpid()}", tmp_path, "pytest-minimal-host-up") as host:
        name = host["name"]
        made_minimal = docker_exec(name, "DEBIAN_FRONTEND=noninteractive apt-get purge -qq -y openssh-server"
                                         " && systemctl stop dbus.socket dbus.service")
        assert made_minimal.returncode == 0, made_minimal.stderr
        assert docker_exec(name, "systemd-run --wait --quiet true").returncode != 0  # no bus: the defect's setting
        inventory = tmp_path / "minimal.yml"
        inventory.write_text(yaml.safe_dump({"all": {"hosts": {name: {
            "ansible_connection": "community.docker.docker", "ansible_host": name,
            "ansible_python_interpreter": "/usr/bin/python3"}}}}))
        (tmp_path / "play.yml").write_text(PLAYBOOK)
        result = run([tool("ansible-playbook"), "-i", inventory, tmp_path / "play.yml"], log_name="pytest-minimal-host")
        assert result.returncode == 0, tail(result.stdout + result.stderr)
        assert docker_exec(name, "systemctl is-active ssh.service dbus.service").stdout.split() == ["active", "active"]
        assert docker_exec(name, "test -f /etc/ssh/sshd_config.d/10-flaskstack.conf && sshd -t").returncode == 0
        assert docker_exec(name, "systemd-run --wait --quiet true").returncode == 0  # what flask_app's migrations use
