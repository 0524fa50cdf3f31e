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


# Layouts: name -> (groups {group: [hosts]}, private addresses, text the failure must contain or None)
LAYOUTS = {
    "fleet-good": ({"lb": ["lb-1"], "web": ["web-1", "web-2"], "db": ["db-1"], "cache": ["cache-1"]},
                   {"lb-1": "127.0.0.3", "web-1": "127.0.0.3", "web-2": "127.0.0.3", "db-1": "127.0.0.3",
                    "cache-1": "127.0.0.3"}, None),
    "two-web-without-lb": ({"web": ["web-1", "web-2"], "db": ["db-1"], "cache": ["cache-1"]},
                           {"web-1": "127.0.0.3", "web-2": "127.0.0.3", "db-1": "127.0.0.3", "cache-1": "127.0.0.3"},
                           "web: 2 hosts (web-1, web-2) would each terminate TLS for shop.flaskstack.net without an lb group"),
    "lb-without-web": ({"lb": ["lb-1"], "db": ["data-1"], "cache": ["data-1"]},
                       {"lb-1": "127.0.0.3", "data-1": "127.0.0.3"},
                       "lb: lb-1 balances to the web group's hosts, which is empty"),
    "lb-is-also-web": ({"lb": ["edge-1"], "web": ["edge-1"], "db": ["data-1"], "cache": ["data-1"]},
                       {"edge-1": "127.0.0.3", "data-1": "127.0.0.3"},
                       "lb: edge-1 balances to the web group's hosts, which is this host itself"),
    "private-address-missing": ({"lb": ["lb-1"], "web": ["web-1"], "db": ["db-1"], "cache": ["cache-1"]},
                                {"lb-1": "127.0.0.3", "db-1": "127.0.0.3", "cache-1": "127.0.0.3"},
                                "flaskstack_private_ip: web-1 has no private address"),
    "database-unreachable": ({"lb": ["lb-1"], "web": ["web-1"], "db": ["db-1"], "cache": ["cache-1"]},
                             {"lb-1": "127.0.0.3", "web-1": "127.0.0.3", "db-1": "127.0.0.2", "cache-1": "127.0.0.3"},
                             "web-1 cannot reach db-1 at its private address 127.0.0.2 (TCP 22)"),
}


@pytest.fixture(scope="module")
def ssh_port_on_loopback():
    """Something answering on 127.0.0.3:22 (the "private network" of the good layouts);
    127.0.0.2 stays closed (if an sshd already listens on every address, it answers)."""
    import socket
    import threading
    server = socket.socket()
    try:
        server.bind(("127.0.0.3", 22))
    except OSError:
        yield
        return
    server.listen(16)
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except OSError:
                pass
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join()
    server.close()


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_layouts_that_cannot_work_are_refused(tmp_path, ssh_port_on_loopback, layout):
    groups, addresses, expected = LAYOUTS[layout]
    hosts = sorted({h for members in groups.values() for h in members})
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {
        "hosts": {h: {**GOOD, "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                      **({"flaskstack_private_ip": addresses[h]} if h in addresses else {})} for h in hosts},
        "children": {g: {"hosts": {h: None for h in members}} for g, members in groups.items()}}}))
    result = run([tool("ansible-playbook"), "-i", inventory, "--forks", "10", REPO / "playbooks" / "preflight.yml"],
                 log_name=f"pytest-preflight-{layout}")
    said = " ".join((result.stdout + result.stderr).split())
    if expected is None:
        assert result.returncode == 0, tail(result.stdout + result.stderr, 40)
    else:
        assert result.returncode != 0 and expected in said, tail(result.stdout + result.stderr, 40)
