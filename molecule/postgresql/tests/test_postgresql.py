"""Behaviour of a host converged with flaskstack.deploy.postgresql.

What a user cares about: the app can use its database and nobody else can,
settings land with a reload when possible, and a backup really restores.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import pytest

sys.path.insert(0, os.environ["FLASKSTACK_HARNESS"])
from testlib import ansible_playbook, converge, listening_addresses  # noqa: E402

testinfra_hosts = ["all"]

APP_PASSWORD = "leak-canary-Pg-shop-2026"
CRON_FILE = "/etc/cron.d/flaskstack-pg-backup"
BACKUPS = "/var/backups/postgresql"


def psql_app(host, sql, password=APP_PASSWORD, db="shop", user="shop"):
    """Connect like the app: TCP to localhost with a password."""
    return host.run(
        "PGPASSWORD=%s PGCONNECT_TIMEOUT=5 psql -X -qAt -v ON_ERROR_STOP=1 "
        "-h 127.0.0.1 -U %s -d %s -c %s", password, user, db, sql,
    )


def psql_super(host, sql, db="postgres"):
    with host.sudo("postgres"):
        return host.check_output("psql -X -qAt -d %s -c %s", db, sql)


def start_time(host):
    return psql_super(host, "SELECT pg_postmaster_start_time()")


def cron_command(host):
    """The backup line of the cron file: (user, command)."""
    with host.sudo():
        lines = [line for line in host.file(CRON_FILE).content_string.splitlines()
                 if line.strip() and not line.startswith("#")]
    assert len(lines) == 1, lines
    fields = lines[0].split(None, 6)
    return fields[5], fields[6], " ".join(fields[:5])


def run_like_cron(host):
    """Run the cron job's command exactly as cron does: its user, /bin/sh, cron's env."""
    user, command, _ = cron_command(host)
    with host.sudo():
        return host.run(
            "env -i SHELL=/bin/sh PATH=/usr/bin:/bin HOME=/var/lib/postgresql LOGNAME=%s "
            "/usr/sbin/runuser -u %s -- /bin/sh -c %s", user, user, command,
        )


def dumps(host):
    with host.sudo():
        out = host.check_output("ls -1 %s/shop/ 2>/dev/null | grep '\\.pgc$' || true", BACKUPS)
    return sorted(out.split())


def test_app_user_uses_its_database_over_tcp(host):
    result = psql_app(host, "CREATE TABLE IF NOT EXISTS probe (id int); INSERT INTO probe VALUES (1); "
                            "SELECT count(*) > 0 FROM probe; DROP TABLE probe;")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "t"


def test_wrong_password_refused(host):
    result = psql_app(host, "SELECT 1", password="not-the-password")
    assert result.rc != 0
    assert "password authentication failed" in result.stderr


def test_superuser_unreachable_over_tcp(host):
    result = psql_app(host, "SELECT 1", user="postgres", db="postgres")
    assert result.rc != 0
    assert "rejects connection" in result.stderr


def test_pg_hba_has_no_weak_methods(host):
    methods = psql_super(host, "SELECT DISTINCT auth_method FROM pg_hba_file_rules").split()
    assert set(methods) <= {"peer", "scram-sha-256", "reject"}, methods
    assert psql_super(host, "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL") == "0"
    assert psql_super(host, "SHOW password_encryption") == "scram-sha-256"


def test_listens_only_on_localhost(host):
    local_addresses = listening_addresses(host, 5432)
    # "localhost": 127.0.0.1, and ::1 where the host has IPv6 on loopback
    assert "127.0.0.1" in local_addresses
    assert local_addresses <= {"127.0.0.1", "[::1]"}, local_addresses


def test_app_user_has_least_privilege(host):
    flags = psql_super(host, "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication "
                             "FROM pg_roles WHERE rolname = 'shop'")
    assert flags == "f|f|f|f"
    assert psql_super(host, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'shop'") == "shop"
    assert psql_super(host, "SELECT has_database_privilege('public', 'shop', 'CONNECT')") == "f"
    assert psql_app(host, "CREATE ROLE sneaky").rc != 0
    assert psql_app(host, "CREATE DATABASE sneaky").rc != 0


def test_tuning_follows_memory_and_connections(host):
    """1024 MiB and 50 connections: 256MB / 768MB / 5MB / 64MB."""
    settings = psql_super(host, "SELECT current_setting('shared_buffers'), current_setting('effective_cache_size'), "
                                "current_setting('work_mem'), current_setting('maintenance_work_mem'), "
                                "current_setting('max_connections')")
    assert settings == "256MB|768MB|5MB|64MB|50"


def test_extension_created(host):
    assert psql_super(host, "SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'", db="shop") == "pg_trgm"


def test_cron_entry(host):
    assert host.package("cron").is_installed
    assert host.service("cron").is_running and host.service("cron").is_enabled
    user, command, schedule = cron_command(host)
    assert (user, schedule) == ("postgres", "0 2 * * *")
    assert command.startswith("/usr/local/sbin/flaskstack-pg-backup")


def test_restore_drill(host):
    """Rows -> the cron job's own command -> drop the database -> restore.yml -> same rows."""
    assert psql_app(host, "CREATE TABLE orders (id int PRIMARY KEY, item text); "
                          "INSERT INTO orders SELECT g, 'item-' || g FROM generate_series(1, 500) g;").rc == 0
    before = psql_app(host, "SELECT count(*), md5(string_agg(id || item, ',' ORDER BY id)) FROM orders").stdout

    backup = run_like_cron(host)
    assert backup.rc == 0, backup.stdout + backup.stderr
    newest = dumps(host)[-1]
    with host.sudo():
        dump_file = host.file(f"{BACKUPS}/shop/{newest}")
        assert dump_file.user == "postgres" and dump_file.mode == 0o600
        status = json.loads(host.file(f"{BACKUPS}/status.json").content_string)
    assert host.file(f"{BACKUPS}/status.json").mode == 0o644
    assert status["databases"]["shop"]["last_result"] == "ok"
    assert status["databases"]["shop"]["file"].endswith(newest)
    assert status["databases"]["shop"]["size_bytes"] > 0
    # the post command got the new file (the off-host copy hook)
    assert host.file(f"/tmp/offhost/{newest}").exists

    psql_super(host, "DROP DATABASE shop WITH (FORCE)")
    assert psql_app(host, "SELECT 1").rc != 0

    name = host.backend.get_hostname()
    restore = ansible_playbook("playbooks/restore.yml", name, {"postgresql_restore_database": "shop"},
                               env={"ANSIBLE_PIPELINING": "False"})
    assert restore.returncode == 0, restore.stdout[-3000:] + restore.stderr[-2000:]
    after = psql_app(host, "SELECT count(*), md5(string_agg(id || item, ',' ORDER BY id)) FROM orders").stdout
    assert after == before
    assert psql_super(host, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'shop'") == "shop"
    assert psql_super(host, "SELECT tableowner FROM pg_tables WHERE tablename = 'orders'", db="shop") == "shop"


def test_restore_replace_takes_the_forms_users_type(host):
    """README: `-e postgresql_restore_replace=true` - a string on the command line, like yes/1/false/0."""
    name = host.backend.get_hostname()
    assert psql_app(host, "CREATE TABLE IF NOT EXISTS cli_forms (id int)").rc == 0
    assert run_like_cron(host).rc == 0  # the newest dump has the table, empty

    def restore(form):
        return ansible_playbook("playbooks/restore.yml", name, {"postgresql_restore_database": "shop"},
                                env={"ANSIBLE_PIPELINING": "False"}, flags=["-e", f"postgresql_restore_replace={form}"])

    for form in ("false", "0"):
        refused = restore(form)
        assert refused.returncode != 0 and "postgresql_restore_replace=true" in refused.stdout + refused.stderr, form
    for form in ("true", "yes", "1"):
        assert psql_app(host, "INSERT INTO cli_forms VALUES (1)").rc == 0
        result = restore(form)
        assert result.returncode == 0, form + result.stdout[-3000:] + result.stderr[-2000:]
        assert psql_app(host, "SELECT count(*) FROM cli_forms").stdout.strip() == "0", form


def test_restore_refuses_to_overwrite_without_replace(host):
    name = host.backend.get_hostname()
    result = ansible_playbook("playbooks/restore.yml", name, {"postgresql_restore_database": "shop"})
    assert result.returncode != 0
    assert "postgresql_restore_replace=true" in result.stdout + result.stderr


UNTOUCHED = "the live database shop is untouched"


def restore_playbook(host, **extra):
    """playbooks/restore.yml of the shop database on this host, with extra variables."""
    return ansible_playbook("playbooks/restore.yml", host.backend.get_hostname(),
                            {"postgresql_restore_database": "shop", **extra},
                            env={"ANSIBLE_PIPELINING": "False"})


def kept_databases(host):
    return psql_super(host, "SELECT datname FROM pg_database WHERE datname LIKE 'shop\\_before\\_restore\\_%' "
                            "ORDER BY datname").split()


@pytest.fixture()
def live_shop(host):
    """The live shop database with orders in it; after the test, no copy of a restore is left over and
    shop still takes connections. Yields a function that counts its orders."""
    assert psql_app(host, "CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY, item text); "
                          "INSERT INTO orders SELECT g, 'item-' || g FROM generate_series(1, 500) g "
                          "ON CONFLICT DO NOTHING").rc == 0

    def rows():
        result = psql_app(host, "SELECT count(*) FROM orders")
        assert result.rc == 0, result.stderr
        return int(result.stdout)

    yield rows
    assert psql_super(host, "SELECT datname FROM pg_database WHERE datname LIKE 'shop\\_restoring\\_%'") == ""
    assert psql_super(host, "SELECT datallowconn FROM pg_database WHERE datname = 'shop'") == "t"


@pytest.fixture()
def planted_dump(host):
    """Put a file among shop's dumps as the postgres user (mode 0600, like the backup's); removed afterwards."""
    planted = []

    def plant(name, command):
        path = f"{BACKUPS}/shop/{name}"
        planted.append(path)
        with host.sudo():
            host.check_output("runuser -u postgres -- sh -c %s", f"umask 077; {command} > {path}")
        return name

    yield plant
    with host.sudo():
        for path in planted:
            host.run("rm -f %s", path)


def assert_failed_and_untouched(result, rows_before, rows, kept_before, host, *said):
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert UNTOUCHED in output, output[-3000:]
    for words in said:
        assert words in output, output[-3000:]
    assert rows() == rows_before
    assert kept_databases(host) == kept_before


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_restore_of_a_corrupt_dump_leaves_the_live_database_untouched(host, live_shop, planted_dump, damage):
    """The demo host's case: the newest dump is damaged and postgresql_restore_replace=true. Garbage is
    refused when its table of contents is read; a dump cut short fails while restoring into the copy."""
    rows_before, kept_before = live_shop(), kept_databases(host)
    assert run_like_cron(host).rc == 0
    newest = f"{BACKUPS}/shop/{dumps(host)[-1]}"
    if damage == "garbage":
        planted_dump("shop-29990101T000000Z.pgc", "head -c 65536 /dev/urandom")
        said = ["is not a readable pg_dump archive", "did not find magic string in file header", "Nothing was restored"]
    else:
        # the end of the last table's data cut off: the table of contents still reads
        planted_dump("shop-29990101T000000Z.pgc", f"head -c $(( $(stat -c %s {newest}) - 64 )) {newest}")
        said = ['failed at "Restore into the copy', "was dropped"]
    result = restore_playbook(host, postgresql_restore_replace=True)
    assert_failed_and_untouched(result, rows_before, live_shop, kept_before, host, *said)


def test_restore_needing_a_missing_extension_leaves_the_live_database_untouched(host, live_shop):
    """A dump that creates pg_trgm, restored on a server where pg_trgm is not installed
    (its control file moved away for the run)."""
    rows_before, kept_before = live_shop(), kept_databases(host)
    assert run_like_cron(host).rc == 0
    newest = dumps(host)[-1]
    with host.sudo("postgres"):
        toc = host.check_output("pg_restore --list %s/shop/%s", BACKUPS, newest)
    assert "EXTENSION - pg_trgm" in toc
    control = host.check_output("ls /usr/share/postgresql/*/extension/pg_trgm.control")
    with host.sudo():
        host.check_output("mv %s %s.away", control, control)
    try:
        result = restore_playbook(host, postgresql_restore_replace=True)
    finally:
        with host.sudo():
            host.check_output("mv %s.away %s", control, control)
    assert_failed_and_untouched(result, rows_before, live_shop, kept_before, host,
                                'failed at "Restore into the copy', "pg_trgm")


def test_restore_killed_halfway_leaves_the_live_database_untouched(host, live_shop, planted_dump):
    """pg_restore killed (SIGKILL) once its COPY into the copy has rows in flight."""
    rows_before, kept_before = live_shop(), kept_databases(host)
    psql_super(host, "DROP DATABASE IF EXISTS bulk_source")
    psql_super(host, "CREATE DATABASE bulk_source")
    psql_super(host, "CREATE TABLE orders (id int PRIMARY KEY, item text); "
                     "INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(1, 1500000) g", db="bulk_source")
    name = planted_dump("shop-bulk.pgc", "pg_dump --format=custom --compress=0 bulk_source")
    psql_super(host, "DROP DATABASE bulk_source")
    # Bounded poll in the host (120 s): the first moment rows are being copied into the
    # restore's copy, kill that pg_restore by its process id.
    killer_script = (
        "until psql -XAtq -c \"SELECT 1 FROM pg_stat_progress_copy p JOIN pg_database d ON d.oid = p.datid "
        "WHERE d.datname LIKE 'shop\\_restoring\\_%' AND p.tuples_processed > 0\" | grep -q 1; do sleep 0.1; done; "
        "for p in /proc/[0-9]*; do [ \"$(cat $p/comm 2>/dev/null)\" = pg_restore ] && pid=${p#/proc/}; done; "
        "[ -n \"$pid\" ] && kill -9 $pid && echo killed $pid")
    killed = {}

    def killer():
        with host.sudo("postgres"):
            killed["result"] = host.run("timeout 120 sh -c %s", killer_script)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        result = restore_playbook(host, postgresql_restore_replace=True, postgresql_restore_dump=name)
    finally:
        thread.join(timeout=130)
    assert killed["result"].stdout.startswith("killed "), killed["result"].stdout + killed["result"].stderr
    assert_failed_and_untouched(result, rows_before, live_shop, kept_before, host,
                                'failed at "Restore into the copy', "was dropped")


def test_replace_restore_swaps_in_and_keeps_the_replaced_database(host, live_shop):
    rows_before = live_shop()
    assert run_like_cron(host).rc == 0
    assert psql_app(host, "INSERT INTO orders SELECT g, 'late-' || g FROM generate_series(100001, 100010) g").rc == 0
    kept_before = kept_databases(host)

    result = restore_playbook(host, postgresql_restore_replace=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert live_shop() == rows_before
    kept = [name for name in kept_databases(host) if name not in kept_before]
    assert len(kept) == 1 and len(kept[0]) <= 63, kept
    # the replaced database, as it was at the swap: the 10 rows written after the dump are there
    assert psql_app(host, "SELECT count(*) FROM orders", db=kept[0]).stdout.strip() == str(rows_before + 10)
    assert f"sudo -u postgres dropdb --port 5432 {kept[0]}" in result.stdout
    assert psql_super(host, "SELECT pg_get_userbyid(datdba), has_database_privilege('public', datname, 'CONNECT') "
                            "FROM pg_database WHERE datname = 'shop'") == "shop|f"
    assert psql_super(host, "SELECT tableowner FROM pg_tables WHERE tablename = 'orders'", db="shop") == "shop"
    psql_super(host, f"DROP DATABASE {kept[0]}")


def test_backup_playbook_runs_the_same_job(host):
    count = len(dumps(host))
    time.sleep(1.1)  # dump names carry the second
    result = ansible_playbook("playbooks/backup.yml", host.backend.get_hostname())
    assert result.returncode == 0, result.stdout[-3000:]
    assert len(dumps(host)) == min(count + 1, 3)


def test_run_by_hand_as_root_backs_up_as_postgres(host):
    """`sudo flaskstack-pg-backup` works and leaves nothing the nightly job cannot use."""
    count = len(dumps(host))
    time.sleep(1.1)  # dump names carry the second
    with host.sudo():
        result = host.run("/usr/local/sbin/flaskstack-pg-backup")
        foreign = host.check_output("find %s ! -user postgres", BACKUPS)
    assert result.rc == 0, result.stdout + result.stderr
    assert foreign == ""
    assert len(dumps(host)) == min(count + 1, 3)
    assert run_like_cron(host).rc == 0


def test_another_user_is_refused_and_nothing_is_written(host):
    before = dumps(host)
    with host.sudo():
        result = host.run("runuser -u nobody -- /usr/local/sbin/flaskstack-pg-backup")
        foreign = host.check_output("find %s ! -user postgres", BACKUPS)
    assert result.rc == 2
    assert "run this as root or as the backup user" in result.stderr and "nothing done" in result.stderr
    assert foreign == "" and dumps(host) == before


def test_failed_dump_keeps_older_dumps(host):
    before = dumps(host)
    assert before
    service = host.check_output("systemctl list-units --plain --no-legend 'postgresql@*' | awk '{print $1}'")
    with host.sudo():
        host.check_output("systemctl stop %s", service)
    try:
        result = run_like_cron(host)
    finally:
        with host.sudo():
            host.check_output("systemctl start %s", service)
    assert result.rc != 0
    assert "FAILED" in result.stderr
    assert dumps(host) == before
    with host.sudo():
        leftovers = host.check_output("find %s -name '*.partial'", BACKUPS)
        status = json.loads(host.file(f"{BACKUPS}/status.json").content_string)
        journal = host.check_output("journalctl -t flaskstack-pg-backup --no-pager -o cat")
    assert leftovers == ""
    assert status["last_run"]["result"] == "failed"
    assert status["databases"]["shop"]["last_result"] == "failed"
    assert status["databases"]["shop"]["last_success"]  # kept from the last good run
    assert "FAILED" in journal.splitlines()[-1]


def test_retention_by_age_and_count(host):
    """Retention 3 dumps / 7 days: a 10-day-old dump and the surplus go, the newest stays."""
    with host.sudo():
        for stamp, age in (("20200101T000000Z", "10 days ago"), ("20200102T000000Z", "1 day ago"),
                           ("20200103T000000Z", "1 day ago")):
            path = f"{BACKUPS}/shop/shop-{stamp}.pgc"
            host.check_output("runuser -u postgres -- sh -c %s",
                              f"umask 077; echo fake > {path}; touch -d '{age}' {path}")
    assert len(dumps(host)) >= 4
    result = run_like_cron(host)
    assert result.rc == 0, result.stderr
    remaining = dumps(host)
    assert len(remaining) == 3
    assert not any(name.startswith("shop-2020") for name in remaining)


def test_reload_only_setting_reloads(host):
    before = start_time(host)
    result = converge(host.backend.get_hostname(), {"postgresql_settings": {"log_min_duration_statement": "250ms"}})
    assert result.returncode == 0, result.stdout[-3000:]
    assert psql_super(host, "SHOW log_min_duration_statement") == "250ms"
    assert start_time(host) == before


def test_rejected_setting_fails_before_reaching_the_server(host):
    before = start_time(host)
    result = converge(host.backend.get_hostname(), {"postgresql_settings": {"work_mem": "banana"}})
    assert result.returncode != 0
    assert "PostgreSQL rejects these settings" in result.stdout + result.stderr
    assert 'invalid value for parameter "work_mem"' in result.stdout + result.stderr
    assert psql_super(host, "SHOW work_mem") == "5MB"
    assert psql_super(host, "SELECT count(*) FROM pg_file_settings WHERE error IS NOT NULL "
                            "AND error <> 'setting could not be applied'") == "0"
    assert start_time(host) == before


def test_shared_buffers_change_restarts(host):
    before = start_time(host)
    result = converge(host.backend.get_hostname(), {"postgresql_shared_buffers_mb": 192})
    assert result.returncode == 0, result.stdout[-3000:]
    assert psql_super(host, "SHOW shared_buffers") == "192MB"
    assert start_time(host) != before
