"""site.yml's preflight: each production-readiness failure names the value and
why, before any host is touched (the play gathers no facts and changes nothing).

All cases run in one ansible-playbook run of playbooks/preflight.yml: each case
is a host in the web, db and cache groups with one value made bad (or several).
The rules of the values a role owns live in that role (flask_app, postgresql,
redis): running the role itself refuses the same value with the same message."""

from __future__ import annotations

import shutil

import pytest
import yaml

from conftest import REPO, json_play_results, load_yaml, role_per_host, run, tail, tool

GOOD = {
    "ansible_connection": "local",
    "flask_app_secret_key": "k7Qz9mW2vR5tY8uI1oP4aS6dF3gH0jKl",
    "flask_app_database_url": "postgresql+psycopg://flaskapp:pw@127.0.0.1:5432/flaskapp",
    "flask_app_redis_url": "redis://flaskapp:pw@127.0.0.1:6379/0",
    "nginx_server_names": ["shop.flaskstack.net"],
    "letsencrypt_domains": ["shop.flaskstack.net"],
    "letsencrypt_email": "ops@flaskstack.net",
    "postgresql_users": [{"name": "flaskapp", "password": "a-long-database-password"}],
    "postgresql_allowed_networks": ["10.0.1.0/24", "10.0.2.7/32", "fd00:1::/64"],
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

# One host with bad values of three roles and of the site: one run names them all.
SEVERAL = {
    "several-at-once": (
        {"flask_app_secret_key": "CHANGE_ME_random_48_characters_or_more",
         "flask_app_database_url": "sqlite:////srv/app.db",
         "flask_app_extra_env": {"FLASK_DEBUG": "true"},
         "postgresql_users": [{"name": "flaskapp", "password": "twelve-chars"}],
         "redis_app_password": "CHANGE_ME_random_32_characters",
         "letsencrypt_email": "you@example.com"},
        ["flask_app_secret_key: a known default", "flask_app_database_url: missing or not PostgreSQL",
         "flask_app_extra_env.FLASK_DEBUG: debug must be off",
         "postgresql_users: every password must come from the vault, be at least 16 characters",
         "redis_app_password: must come from the vault", "letsencrypt_email: set a real address"]),
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    work = tmp_path_factory.mktemp("preflight")
    hosts = {case: {**GOOD, **bad} for case, (bad, _) in {**CASES, **SEVERAL}.items()}
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


@pytest.mark.parametrize("case", sorted(SEVERAL))
def test_one_run_names_every_failing_value(outcomes, case):
    """Not only the first refusal: every bad value of every role on the host, in the same run."""
    _, expected = SEVERAL[case]
    messages = outcomes["failures"].get(case, [])
    missing = [text for text in expected if not any(text in m for m in messages)]
    assert not missing, f"not named: {missing}\n{messages}"


def test_good_settings_pass(outcomes):
    assert outcomes["rc"] != 0
    assert "all-good" not in outcomes["failures"], outcomes["failures"].get("all-good")
    assert outcomes["stats"]["all-good"]["ok"] >= 1


CHECKS_ONLY = {"ansible.builtin.assert", "ansible.builtin.fail", "ansible.builtin.set_fact"}


def test_the_preflight_can_change_nothing():
    """Only checks: every task of playbooks/preflight.yml is an assert, a fail or a read-only connection
    probe, or includes a role's check file, whose tasks only set facts, assert and fail."""
    plays = yaml.safe_load((REPO / "playbooks" / "preflight.yml").read_text())
    tasks = [task for play in plays for task in play["tasks"]]
    modules = {key for task in tasks for key in task if key.startswith("ansible.builtin.")}
    assert modules and modules <= CHECKS_ONLY | {"ansible.builtin.wait_for", "ansible.builtin.include_role"}, modules
    included = [task["ansible.builtin.include_role"] for task in tasks if "ansible.builtin.include_role" in task]
    assert {i["name"] for i in included} == {"flaskstack.deploy.flask_app", "flaskstack.deploy.postgresql",
                                             "flaskstack.deploy.redis"}, included
    for include in included:
        path = REPO / "roles" / include["name"].split(".")[-1] / "tasks" / f"{include['tasks_from']}.yml"
        role_modules = {key for task in load_yaml(path) for key in task if key.startswith("ansible.builtin.")}
        assert role_modules and role_modules <= CHECKS_ONLY, (path, role_modules)


# The same bad values given to the role that owns them, run by itself as site.yml runs it
# (argument_specs, then its preflight) on the bare test host. Left out: the site's own
# rules (nginx_/letsencrypt_ values, the layout), flask_app_env (the role holds only
# production to these rules), and the values the role's argument_specs stop first: a
# missing postgresql password, and a vault variable that is not loaded (named as undefined).
ROLE_PREFIXES = {"flask_app": "flask_app_", "postgresql": "postgresql_", "redis": "redis_"}
ROLE_CASES = sorted(
    (case, role) for case, (bad, _) in {**CASES, **SEVERAL}.items()
    if case not in ("not-production", "postgresql-password-missing", "secret-key-vault-not-loaded",
                    "redis-password-missing")
    for role, prefix in ROLE_PREFIXES.items() if any(var.startswith(prefix) for var in bad))

@pytest.fixture(scope="module")
def role_outcomes(testhost, tmp_path_factory):
    """One run, one alias of the test host per (case, role); check mode on top, though every case is refused."""
    good = {k: v for k, v in GOOD.items() if k != "ansible_connection"}
    bad_values = {case: bad for case, (bad, _) in {**CASES, **SEVERAL}.items()}
    ran = role_per_host(testhost, tmp_path_factory.mktemp("preflight-roles"),
                        {f"{role}--{case}": {**good, **bad_values[case], "case_role": role} for case, role in ROLE_CASES},
                        "pytest-preflight-roles", check=True)
    messages = {host: [m for _, said in tasks for m in said] for host, tasks in ran["failed"].items()}
    return {"messages": messages, "stats": ran["stats"], "raw": ran["raw"]}


@pytest.mark.parametrize(("case", "role"), ROLE_CASES)
def test_the_role_refuses_the_same_value_with_the_same_message(outcomes, role_outcomes, case, role):
    """One source: each refusal of the preflight for a value this role owns comes word for word from the role run."""
    owned = [m for m in outcomes["failures"].get(case, []) if m.split(":")[0].startswith(ROLE_PREFIXES[role])]
    said = role_outcomes["messages"].get(f"{role}--{case}", [])
    assert owned, outcomes["failures"].get(case)
    assert said, f"the {role} role accepted {case}\n{tail(role_outcomes['raw'], 40)}"
    assert [m for m in owned if m not in said] == [], said
    assert role_outcomes["stats"][f"{role}--{case}"]["changed"] == 0


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
    # the layout's refusal and the roles' of other hosts, in the same run
    "address-missing-and-bad-values": ({"lb": ["lb-1"], "web": ["web-1", "web-2"], "db": ["db-1"], "cache": ["cache-1"]},
                                       {"lb-1": "127.0.0.3", "web-2": "127.0.0.3", "db-1": "127.0.0.3",
                                        "cache-1": "127.0.0.3"},
                                       ("flaskstack_private_ip: web-1 has no private address",
                                        "flask_app_redis_url: missing or not a redis://",
                                        "postgresql_users: every password must come from the vault",
                                        "redis_app_password: must come from the vault")),
}
# Values of single hosts in a layout (the rest are GOOD's)
LAYOUT_VALUES = {
    "address-missing-and-bad-values": {"web-2": {"flask_app_redis_url": "memcached://127.0.0.1:11211"},
                                       "db-1": {"postgresql_users": [{"name": "flaskapp", "password": "short"}]},
                                       "cache-1": {"redis_app_password": "CHANGE_ME_random_32_characters"}},
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
                      **({"flaskstack_private_ip": addresses[h]} if h in addresses else {}),
                      **LAYOUT_VALUES.get(layout, {}).get(h, {})} for h in hosts},
        "children": {g: {"hosts": {h: None for h in members}} for g, members in groups.items()}}}))
    result = run([tool("ansible-playbook"), "-i", inventory, "--forks", "10", REPO / "playbooks" / "preflight.yml"],
                 log_name=f"pytest-preflight-{layout}")
    said = " ".join((result.stdout + result.stderr).split())
    if expected is None:
        assert result.returncode == 0, tail(result.stdout + result.stderr, 40)
    else:
        missing = [text for text in ((expected,) if isinstance(expected, str) else expected) if text not in said]
        assert result.returncode != 0 and not missing, (missing, tail(result.stdout + result.stderr, 40))


def test_prod_inventory_with_a_host_missing_its_address(tmp_path):
    """inventories/prod builds the data hosts' addresses and the app's URLs from the other hosts'
    private addresses: with one missing, the run still names it and every other bad value."""
    inventory = tmp_path / "prod"
    shutil.copytree(REPO / "inventories" / "prod" / "group_vars", inventory / "group_vars")
    site = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            "flaskstack_domain": "shop.flaskstack.net", "flaskstack_acme_email": "ops@flaskstack.net",
            "vault_flask_app_secret_key": GOOD["flask_app_secret_key"],
            "vault_postgresql_app_password": "CHANGE_ME_random_32_characters",
            "vault_redis_app_password": "a-long-redis-password"}
    groups = {"lb": ["lb-1"], "web": ["web-1", "web-2"], "db": ["db-1"], "cache": ["cache-1"]}
    hosts = {h: {**site, **({} if h == "web-1" else {"flaskstack_private_ip": "127.0.0.3"})}
             for members in groups.values() for h in members}
    hosts["web-2"]["vault_flask_app_secret_key"] = "changeme-" * 4
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {
        "hosts": hosts, "children": {g: {"hosts": {h: None for h in members}} for g, members in groups.items()}}}))
    result = run([tool("ansible-playbook"), "-i", inventory, "--forks", "10", REPO / "playbooks" / "preflight.yml"],
                 log_name="pytest-preflight-prod-inventory")
    said = " ".join((result.stdout + result.stderr).split())
    expected = ["flaskstack_private_ip: web-1 has no private address", "postgresql_users: every password must come",
                "flask_app_secret_key: a known default"]
    missing = [text for text in expected if text not in said]
    assert result.returncode != 0 and not missing, (missing, tail(result.stdout + result.stderr, 60))
