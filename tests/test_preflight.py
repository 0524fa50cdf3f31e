"""site.yml's preflight: each production-readiness failure names the value and
why, before any host is touched (the play gathers no facts and changes nothing).

All cases run in one ansible-playbook run of playbooks/preflight.yml: each case
is a host in the web, db and cache groups with one value made bad."""

from __future__ import annotations

import pytest
import yaml

from conftest import REPO, json_play_results, run, tail, tool

GOOD = {
    "ansible_connection": "local",
    "flask_app_secret_key": "k7Qz9mW2vR5tY8uI1oP4aS6dF3gH0jKl",
    "flask_app_database_url": "postgresql+psycopg://flaskapp:pw@127.0.0.1:5432/flaskapp",
    "flask_app_redis_url": "redis://flaskapp:pw@127.0.0.1:6379/0",
    "nginx_server_names": ["shop.flaskstack.net"],
    "letsencrypt_domains": ["shop.flaskstack.net"],
    "letsencrypt_email": "ops@flaskstack.net",
    "postgresql_users": [{"name": "flaskapp", "password": "a-long-database-password"}],
    "redis_app_password": "a-long-redis-password",
}

# case -> (bad values, text the failure must contain)
CASES = {
    "secret-key-missing": ({"flask_app_secret_key": ""}, "flask_app_secret_key: missing or shorter than 32"),
    "secret-key-short": ({"flask_app_secret_key": "s3cr3t-but-short"}, "flask_app_secret_key: missing or shorter than 32"),
    "secret-key-placeholder": (
        {"flask_app_secret_key": "CHANGE_ME_random_48_characters_or_more"}, "flask_app_secret_key: a known default"),
    "secret-key-one-character": ({"flask_app_secret_key": "a" * 40}, "flask_app_secret_key: a known default"),
    "secret-key-vault-not-loaded": (
        {"flask_app_secret_key": "{{ vault_flask_app_secret_key }}"}, "flask_app_secret_key: missing"),
    "database-url-sqlite": ({"flask_app_database_url": "sqlite:////srv/app.db"}, "flask_app_database_url: missing or not PostgreSQL"),
    "database-url-missing": ({"flask_app_database_url": ""}, "flask_app_database_url: missing or not PostgreSQL"),
    "redis-url-missing": ({"flask_app_redis_url": ""}, "flask_app_redis_url: missing"),
    "debug-on": ({"flask_app_extra_env": {"FLASK_DEBUG": "1"}}, "flask_app_extra_env.FLASK_DEBUG: debug must be off"),
    "not-production": ({"flask_app_env": "development"}, "flask_app_env: servers run APP_ENV=production"),
    "domain-missing": ({"letsencrypt_domains": []}, "letsencrypt_domains: set the public names"),
    "domain-placeholder": ({"letsencrypt_domains": ["shop.example.com"]}, "letsencrypt_domains: set the public names"),
    "server-names-missing": ({"nginx_server_names": []}, "nginx_server_names: set the site's domain names"),
    "acme-email-missing": ({"letsencrypt_email": ""}, "letsencrypt_email: set a real address"),
    "acme-email-placeholder": ({"letsencrypt_email": "you@example.com"}, "letsencrypt_email: set a real address"),
    "postgresql-password-placeholder": (
        {"postgresql_users": [{"name": "flaskapp", "password": "CHANGE_ME_random_32_characters"}]},
        "postgresql_users: every password must come from the vault"),
    "postgresql-password-missing": (
        {"postgresql_users": [{"name": "flaskapp"}]}, "postgresql_users: every password must come from the vault"),
    "redis-password-missing": ({"redis_app_password": "{{ vault_redis_app_password }}"}, "redis_app_password: must come from the vault"),
}

# vault.yml.example copied but not filled in: every placeholder is refused.
EXAMPLE = yaml.safe_load((REPO / "inventories/prod/group_vars/all/vault.yml.example").read_text())
CASES["vault-example-not-filled-in"] = (
    {"flask_app_secret_key": EXAMPLE["vault_flask_app_secret_key"],
     "postgresql_users": [{"name": "flaskapp", "password": EXAMPLE["vault_postgresql_app_password"]}],
     "redis_app_password": EXAMPLE["vault_redis_app_password"]},
    "flask_app_secret_key: a known default")


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    work = tmp_path_factory.mktemp("preflight")
    hosts = {case: {**GOOD, **bad} for case, (bad, _) in CASES.items()}
    hosts["all-good"] = dict(GOOD)
    groups = {name: {"hosts": {h: None for h in hosts}} for name in ("web", "db", "cache")}
    inventory = work / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts, "children": groups}}))
    result = run([tool("ansible-playbook"), "-i", inventory, "--forks", "10", REPO / "playbooks" / "preflight.yml"],
                 env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"}, log_name="pytest-preflight")
    data = json_play_results(result.stdout)
    failures: dict[str, list[str]] = {}
    for play in data["plays"]:
        for task in play["tasks"]:
            for host, res in task["hosts"].items():
                if res.get("failed"):
                    failures.setdefault(host, []).extend(
                        item.get("msg", "") for item in res.get("results", []) if item.get("failed"))
    return {"failures": failures, "stats": data["stats"], "raw": result.stdout, "rc": result.returncode}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_bad_value_is_named(outcomes, case):
    _, expected = CASES[case]
    messages = outcomes["failures"].get(case)
    assert messages, f"{case} passed the preflight\n{tail(outcomes['raw'], 40)}"
    assert any(expected in m for m in messages), messages


def test_good_settings_pass(outcomes):
    assert outcomes["rc"] != 0
    assert "all-good" not in outcomes["failures"], outcomes["failures"].get("all-good")
    assert outcomes["stats"]["all-good"]["ok"] >= 1


def test_the_preflight_can_change_nothing():
    """Only checks: every task of playbooks/preflight.yml is an assert, a fail or a read-only connection probe."""
    plays = yaml.safe_load((REPO / "playbooks" / "preflight.yml").read_text())
    modules = {key for play in plays for task in play["tasks"] for key in task
               if key.startswith("ansible.builtin.")}
    assert modules and modules <= {"ansible.builtin.assert", "ansible.builtin.fail", "ansible.builtin.wait_for"}, modules
