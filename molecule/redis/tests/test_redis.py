"""Behaviour of a host converged with flaskstack.deploy.redis: only the app
gets in, dangerous commands are refused, memory is capped, data survives a
restart, and Debian's hardened unit runs unmodified."""

from __future__ import annotations

import hashlib
import os
import sys

import pytest

sys.path.insert(0, os.environ["FLASKSTACK_HARNESS"])
from testlib import converge, listening_addresses  # noqa: E402

testinfra_hosts = ["all"]

USER = "shop"
PASSWORD = "leak-canary-Redis-shop-2026"


def cli(host, *args, user=USER, password=PASSWORD, auth=True):
    """redis-cli over TCP to localhost; the password travels in REDISCLI_AUTH, not argv."""
    if auth:
        return host.run("REDISCLI_AUTH=%s redis-cli --no-auth-warning -h 127.0.0.1 --user %s " + " ".join(["%s"] * len(args)),
                        password, user, *args)
    return host.run("redis-cli -h 127.0.0.1 " + " ".join(["%s"] * len(args)), *args)


def test_unauthenticated_commands_refused(host):
    for command in (["PING"], ["GET", "x"], ["SET", "x", "1"]):
        result = cli(host, *command, auth=False)
        assert "NOAUTH" in result.stdout + result.stderr, command


def test_wrong_password_refused(host):
    result = cli(host, "PING", password="definitely-not-the-password")
    assert "WRONGPASS" in result.stdout + result.stderr


def test_app_credentials_work(host):
    assert cli(host, "PING").stdout.strip() == "PONG"
    assert cli(host, "SET", "flaskstack:probe", "hello").stdout.strip() == "OK"
    assert cli(host, "GET", "flaskstack:probe").stdout.strip() == "hello"


def test_dangerous_commands_refused(host):
    for command in (["FLUSHALL"], ["FLUSHDB"], ["CONFIG", "GET", "maxmemory"], ["DEBUG", "SLEEP", "0"],
                    ["SHUTDOWN"], ["KEYS", "*"], ["ACL", "LIST"]):
        result = cli(host, *command)
        output = result.stdout + result.stderr
        # NOPERM from the ACL; DEBUG is also off in Redis itself (enable-debug-command no)
        assert "NOPERM" in output or "command not allowed" in output, command
    assert host.service("redis-server").is_running  # SHUTDOWN really was refused


def test_memory_cap_and_policy(host):
    info = cli(host, "INFO", "memory").stdout
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    assert fields["maxmemory"].strip() == str(64 * 1024 * 1024)
    assert fields["maxmemory_policy"].strip() == "allkeys-lru"


def test_listens_only_on_loopback(host):
    addresses = listening_addresses(host, 6379)
    assert "127.0.0.1" in addresses
    assert addresses <= {"127.0.0.1", "[::1]"}, addresses


def test_protected_and_supervised(host):
    info = cli(host, "INFO", "server").stdout
    assert "executable:/usr/bin/redis-server" in info
    with host.sudo():
        config = host.file("/etc/redis/redis.conf")
        assert config.user == "redis" and config.mode == 0o640
        text = config.content_string
    assert "protected-mode yes" in text and "supervised systemd" in text
    # the password is stored only as a hash
    assert PASSWORD not in text
    assert hashlib.sha256(PASSWORD.encode()).hexdigest() in text


def test_distribution_unit_runs_unmodified(host):
    """Debian's sandboxed unit (PrivateUsers=yes and friends) is used as shipped."""
    show = host.check_output("systemctl show redis-server -p DropInPaths -p PrivateUsers -p Type -p ActiveState")
    unit = dict(line.split("=", 1) for line in show.splitlines())
    assert unit == {"DropInPaths": "", "PrivateUsers": "yes", "Type": "notify", "ActiveState": "active"}


def test_data_survives_restart(host):
    """RDB persistence: a key written before a restart is there after it."""
    assert cli(host, "SET", "flaskstack:durable", "kept").stdout.strip() == "OK"
    with host.sudo():
        host.check_output("systemctl restart redis-server")
    for _ in range(20):
        if cli(host, "PING").stdout.strip() == "PONG":
            break
        host.run("sleep 0.5")
    assert cli(host, "GET", "flaskstack:durable").stdout.strip() == "kept"
    info = cli(host, "INFO", "persistence").stdout
    assert "aof_enabled:0" in info


def test_kernel_settings_for_redis(host):
    """Queued for the host kernel; applied where the kernel is this host's own."""
    config = host.check_output("systemd-analyze cat-config sysctl.d")
    assert "vm.overcommit_memory = 1" in config
    thp = host.service("flaskstack-disable-thp")
    assert thp.is_enabled


def test_kernel_settings_applied_where_the_kernel_is_the_hosts_own(host):
    if host.run("systemd-detect-virt --container").rc == 0:
        pytest.skip("a container shares the host kernel: its sysctls and THP are left to the host")
    assert host.sysctl("vm.overcommit_memory") == 1
    assert "[never]" in host.file("/sys/kernel/mm/transparent_hugepage/enabled").content_string


def test_a_check_diff_verbose_run_prints_neither_password_nor_hash(host):
    """`--check --diff -vvv` with a rotated password: the run would change redis.conf,
    yet neither password nor the SHA-256 hash redis.conf stores appears in the output."""
    rotated = "leak-canary-Redis-rotated-2026"
    result = converge(host.backend.get_hostname(), {"redis_app_password": rotated},
                      flags=["--check", "--diff", "-vvv"])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Write the Redis configuration" in output
    assert "changed=0" not in output.split("PLAY RECAP", 1)[1]  # the rotation is a real change
    for secret in (PASSWORD, rotated):
        assert secret not in output
        assert hashlib.sha256(secret.encode()).hexdigest() not in output
