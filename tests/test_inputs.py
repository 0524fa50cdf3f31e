"""Bad input is rejected with a clear message before anything changes.

All cases run in one ansible-playbook invocation: each case is an alias of
the same bare test host carrying that case's variables, so one run exercises
every role's argument_specs and preflight checks for real, over SSH.
"""

from __future__ import annotations

import pytest

from conftest import docker_exec, role_per_host, tail

GOOD_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJpiGwgbSxaaIneHIoZVOls77el5yrI/AyXedX6GKn8I ops@example.com"

FLASK_APP_OK = {
    "flask_app_secret_key": "k7#Qz9!mW2$vR5&tY8*uI1^oP4@aS6%d",
    "flask_app_database_url": "postgresql+psycopg://app:pw@127.0.0.1/app",
    "flask_app_redis_url": "redis://app:pw@127.0.0.1:6379/0",
}

# case id -> (role, variables, text the failure message must contain)
CASES = {
    "base-ssh-port-not-integer": ("base", {"base_ssh_port": "twenty-two"}, "base_ssh_port"),
    "base-firewall-port-not-integer": (
        "base", {"base_firewall_allowed_ports": [{"port": "http"}]}, "port"),
    "base-firewall-port-out-of-range": (
        "base", {"base_firewall_allowed_ports": [{"port": 70000}]}, "Ports must be integers from 1 to 65535"),
    "base-unknown-timezone": ("base", {"base_timezone": "Mars/Olympus_Mons"}, "must be a known IANA time zone"),
    "base-admin-user-missing-name": (
        "base", {"base_admin_users": [{"ssh_keys": [GOOD_KEY]}]}, "missing required arguments: name"),
    "base-malformed-ssh-key": (
        "base", {"base_admin_users": [{"name": "ops", "ssh_keys": ["ssh-ed25519 AAAA!!notbase64 ops"]}]},
        "malformed: ssh-ed25519 AAAA!!notbase64 ops"),
    "base-ssh-key-type-mismatch": (
        "base", {"base_admin_users": [{"name": "ops", "ssh_keys": [GOOD_KEY.replace("ssh-ed25519", "ssh-rsa", 1)]}]},
        "malformed"),
    "base-unknown-choice": ("base", {"base_swap_state": "sometimes"}, "base_swap_state"),
    "base-remove-connecting-user": (
        "base", {"base_admin_users": [{"name": "admin", "state": "absent"}]}, "cannot be removed"),
    "base-bad-reboot-time": ("base", {"base_unattended_upgrades_reboot_time": "25:00"}, "HH:MM"),
    "base-purge-everything": (
        "base", {"base_purge_removed_packages": ["linux-image-*", "*"]}, "these are not: ['*']"),
    "base-admin-group-root": ("base", {"base_admin_group": "root"}, "base_admin_group 'root' must be"),
    "python-hashes-without-file": (
        "python", {"python_venv_require_hashes": True, "python_app_user": "rejectedapp"},
        "python_venv_require_hashes needs"),
    "python-root-app-user": ("python", {"python_app_user": "root"}, "not root"),
    "python-root-home-writable-by-the-app": (
        "python", {"python_app_home_owner": "root", "python_app_home_mode": "0771"},
        "python_app_home_mode 0771 lets the app's group or others write"),
    "python-unknown-home-owner": ("python", {"python_app_home_owner": "nobody"}, "python_app_home_owner"),
    "python-missing-requirements-file": (
        "python", {"python_venv_requirements_file": "/nonexistent/requirements.txt",
                   "python_app_user": "rejectedapp"}, "does not exist on the controller"),
    "python-packages-not-a-list": (
        "python", {"python_venv_packages": {"flask": "3"}, "python_app_user": "rejectedapp"},
        "python_venv_packages"),
    "postgresql-unknown-hba-method": (
        "postgresql", {"postgresql_hba_entries": [{"source": "10.0.0.0/8", "method": "md5"}]}, "method"),
    "postgresql-non-numeric-memory": ("postgresql", {"postgresql_shared_buffers_mb": "lots"}, "postgresql_shared_buffers_mb"),
    "postgresql-illegal-database-name": (
        "postgresql", {"postgresql_users": [{"name": "shop", "password": "long-enough-password"}],
                       "postgresql_databases": [{"name": "shop-db; DROP", "owner": "shop"}]},
        "not a usable PostgreSQL user or database name"),
    "postgresql-missing-password": (
        "postgresql", {"postgresql_users": [{"name": "shop"}]}, "missing required arguments: password"),
    "postgresql-bad-network": (
        "postgresql", {"postgresql_allowed_networks": ["10.0.0.0"]}, "CIDR"),
    "redis-missing-password": ("redis", {}, "redis_app_password: must come from the vault, be at least 16 characters"),
    "redis-unknown-policy": (
        "redis", {"redis_app_password": "long-enough-redis-pass", "redis_maxmemory_policy": "sometimes"},
        "redis_maxmemory_policy"),
    "redis-memory-not-integer": (
        "redis", {"redis_app_password": "long-enough-redis-pass", "redis_maxmemory_mb": "half"}, "redis_maxmemory_mb"),
    "nginx-no-server-name": ("nginx", {}, "needs at least one valid host name"),
    "nginx-hsts-not-integer": (
        "nginx", {"nginx_server_names": ["shop.example.com"], "nginx_hsts_max_age": "two years"}, "nginx_hsts_max_age"),
    "nginx-bad-upstream": (
        "nginx", {"nginx_server_names": ["shop.example.com"], "nginx_upstream_servers": ["gunicorn"]},
        "upstreams written as unix:/path or host:port"),
    "nginx-tls-site-without-certificate": (
        "nginx", {"nginx_server_names": ["shop.example.com"]},
        "needs absolute paths in nginx_tls_certificate and nginx_tls_certificate_key (got '' and '')"),
    "nginx-maintenance-allow-not-cidr": (
        "nginx", {"nginx_server_names": ["shop.example.com"], "nginx_maintenance_allow": ["10.0.0.1/8", "office"]},
        "CIDR notation in nginx_maintenance_allow (not: 10.0.0.1/8, office;"),
    "letsencrypt-malformed-email": (
        "letsencrypt", {"letsencrypt_domains": ["shop.example.com"], "letsencrypt_email": "ops-at-example"},
        "a valid letsencrypt_email"),
    "letsencrypt-plain-http-acme-url": (
        "letsencrypt", {"letsencrypt_domains": ["shop.example.com"], "letsencrypt_email": "ops@example.com",
                        "letsencrypt_acme_directory": "http://acme.internal/directory"},
        "an https:// letsencrypt_acme_directory"),
    "letsencrypt-no-domains": ("letsencrypt", {"letsencrypt_email": "ops@example.com"}, "needs letsencrypt_domains"),
    "gunicorn-threads-with-sync-workers": ("gunicorn", {"gunicorn_threads": 4}, "use gthread for threads"),
    "gunicorn-bind-without-port": ("gunicorn", {"gunicorn_bind": "0.0.0.0"}, "gunicorn_bind as 'unix:/run/...' or 'host:port'"),
    "gunicorn-unknown-worker-class": ("gunicorn", {"gunicorn_worker_class": "eventlet"}, "gunicorn_worker_class"),
    "flask_app-short-secret-key": (
        "flask_app", {**FLASK_APP_OK, "flask_app_secret_key": "changeme"}, "flask_app_secret_key: missing or shorter than 32"),
    "flask_app-sqlite": (
        "flask_app", {**FLASK_APP_OK, "flask_app_database_url": "sqlite:////srv/app.db"},
        "flask_app_database_url: missing or not PostgreSQL"),
    "flask_app-debug-on": (
        "flask_app", {**FLASK_APP_OK, "flask_app_extra_env": {"FLASK_DEBUG": "1"}},
        "flask_app_extra_env.FLASK_DEBUG: debug must be off"),
    "flask_app-keep-one-release": (
        "flask_app", {**FLASK_APP_OK, "flask_app_keep_releases": 1}, "flask_app_keep_releases >= 2"),
    "flask_app-source-and-git": (
        "flask_app", {**FLASK_APP_OK, "flask_app_source": "/tmp/app", "flask_app_git_repo": "https://git.invalid/app.git"},
        "at most one of flask_app_source and flask_app_git_repo"),
    "flask_app-status-code-out-of-range": (
        "flask_app", {**FLASK_APP_OK, "flask_app_health_status_codes": [200, 1302]}, "flask_app_health_status_codes=[200, 1302]"),
    "flask_app-lock-expiry-too-short": (
        "flask_app", {**FLASK_APP_OK, "flask_app_deploy_lock_expiry": 5},
        "flask_app_deploy_lock_expiry must be at least 60 seconds (got 5)"),
    "gunicorn-relative-app-root": ("gunicorn", {"gunicorn_app_root": "srv/app"}, "an absolute gunicorn_app_root"),
}

@pytest.fixture(scope="module")
def outcomes(testhost, tmp_path_factory):
    ran = role_per_host(testhost, tmp_path_factory.mktemp("inputs"),
                        {case: {"case_role": role, **variables} for case, (role, variables, _) in CASES.items()},
                        "pytest-invalid-inputs")
    assert ran["returncode"] != 0, "every case must fail"
    # the first failed task of each case, with its messages
    failures = {host: f"{tasks[0][0]}: " + " | ".join(m for m in tasks[0][1] if m)
                for host, tasks in ran["failed"].items()}
    return {"failures": failures, "stats": ran["stats"], "raw": ran["raw"]}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rejected_with_clear_message(outcomes, case):
    _, _, expected = CASES[case]
    message = outcomes["failures"].get(case)
    assert message is not None, f"{case} was not rejected\n{tail(outcomes['raw'], 40)}"
    assert expected in message, message


@pytest.mark.parametrize("case", sorted(CASES))
def test_nothing_changed(outcomes, case):
    assert outcomes["stats"][case]["changed"] == 0


def test_host_untouched_after_rejections(outcomes, testhost):
    """Not a package, user or config file of the roles reached the host."""
    probe = docker_exec(
        testhost["name"],
        "for p in ufw fail2ban unattended-upgrades systemd-timesyncd postgresql cron redis-server nginx certbot; do dpkg -s $p >/dev/null 2>&1 && echo $p; done;"
        "getent passwd rejectedapp ops; getent group flaskstack-admins;"
        "ls /etc/ssh/sshd_config.d/10-flaskstack.conf /etc/sysctl.d/60-flaskstack-base.conf 2>/dev/null;"
        "true",
    )
    assert probe.stdout.strip() == "", probe.stdout
