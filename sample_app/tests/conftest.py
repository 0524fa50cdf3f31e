"""Real PostgreSQL and Redis servers on loopback, started by the tests themselves.

Debian's postgresql and redis-server packages provide the binaries
(``make -C sample_app test-deps`` installs them). Each session gets a fresh
PostgreSQL cluster and a Redis server on free ports under a temporary
directory; both are stopped at the end.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def _pg_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        pytest.exit("PostgreSQL server binaries missing: run `make -C sample_app test-deps`", 2)
    return Path(found[-1]).parent


def _as_postgres_user() -> list[str]:
    # initdb refuses to run as root; the Debian package's postgres user owns the cluster.
    if os.geteuid() != 0:
        return []
    pwd.getpwnam("postgres")
    return ["runuser", "-u", "postgres", "--"]


@pytest.fixture(scope="session")
def postgres_url():
    bindir = _pg_bindir()
    wrap = _as_postgres_user()
    # Not under pytest's per-user temp dir (0700 root): the postgres user must reach it.
    base = Path(tempfile.mkdtemp(prefix="flaskstack-sample-pg-"))
    data = base / "data"
    if wrap:
        shutil.chown(base, "postgres", "postgres")
    port = _free_port()
    subprocess.run([*wrap, bindir / "initdb", "-D", data, "-U", "postgres", "-A", "trust",
                    "-E", "UTF8", "--locale", "C.UTF-8"], check=True, capture_output=True, text=True)
    subprocess.run([*wrap, bindir / "pg_ctl", "-D", data, "-w", "-l", base / "log",
                    "-o", f"-h 127.0.0.1 -p {port} -k {base} -F", "start"],
                   check=True, capture_output=True)
    try:
        _wait_for_port(port)
        subprocess.run([bindir / "psql" if (bindir / "psql").exists() else "psql",
                        "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-q",
                        "-c", "CREATE ROLE app LOGIN", "-c", "CREATE DATABASE app OWNER app"],
                       check=True, capture_output=True)
        yield f"postgresql+psycopg://app@127.0.0.1:{port}/app"
    finally:
        subprocess.run([*wrap, bindir / "pg_ctl", "-D", data, "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    binary = shutil.which("redis-server")
    if not binary:
        pytest.exit("redis-server missing: run `make -C sample_app test-deps`", 2)
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port)
        yield {"url": f"redis://127.0.0.1:{port}/0", "port": port, "process": proc}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def migrated_db(postgres_url, redis_server):
    """The database after `flask db upgrade`, run as the deploy runs it."""
    env = {**os.environ, "APP_ENV": "testing", "DATABASE_URL": postgres_url,
           "REDIS_URL": redis_server["url"]}
    result = subprocess.run(
        [Path(sys.executable).parent / "flask", "--app", "flaskstack_sample:create_app",
         "db", "upgrade"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return postgres_url


@pytest.fixture()
def app(migrated_db, redis_server):
    from flaskstack_sample import create_app
    from flaskstack_sample.extensions import db, redis_client

    app = create_app("testing", {"DATABASE_URL": migrated_db, "REDIS_URL": redis_server["url"]})
    with app.app_context():
        db.session.execute(text("TRUNCATE notes RESTART IDENTITY"))
        db.session.commit()
        redis_client.client.flushdb()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture()
def client(app):
    return app.test_client()
