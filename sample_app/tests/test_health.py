import shutil
import socket

import pytest
from sqlalchemy import create_engine, text

from flaskstack_sample import MIGRATIONS_DIR, create_app
from flaskstack_sample.extensions import db


def test_health_answers_without_dependencies(postgres_url):
    # Nothing listens on the database or Redis here: /health must still answer.
    app = create_app("testing", {"DATABASE_URL": "postgresql+psycopg://x@127.0.0.1:1/x",
                                 "REDIS_URL": "redis://127.0.0.1:1/0"})
    response = app.test_client().get("/health")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"
    assert response.get_json()["host"] == socket.gethostname()  # which app host answered


def test_ready_when_database_and_redis_answer(client):
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_not_ready_names_redis_when_redis_is_down(migrated_db):
    app = create_app("testing", {"DATABASE_URL": migrated_db,
                                 "REDIS_URL": f"redis://127.0.0.1:{_closed_port()}/0"})
    response = app.test_client().get("/health/ready")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("failed: ")


def test_not_ready_names_the_database_and_leaks_no_credentials(redis_server):
    url = f"postgresql+psycopg://app:hunter2-secret@127.0.0.1:{_closed_port()}/app"
    app = create_app("testing", {"DATABASE_URL": url, "REDIS_URL": redis_server["url"]})
    response = app.test_client().get("/health/ready")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "failed: OperationalError", "redis": "ok"}
    assert b"hunter2" not in response.data and b"Traceback" not in response.data


@pytest.fixture()
def scratch_db(postgres_url):
    """A new database on the test server (as its superuser), dropped afterwards:
    ``make(sql)`` creates it, runs ``sql`` in it and returns the app's URL for it."""
    admin = create_engine(postgres_url.replace("app@", "postgres@").rsplit("/", 1)[0] + "/postgres",
                          isolation_level="AUTOCOMMIT")
    made = []

    def make(sql: str = "") -> str:
        name = f"ready_{len(made)}"
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            conn.execute(text(f"CREATE DATABASE {name} OWNER app"))
        made.append(name)
        url = postgres_url.rsplit("/", 1)[0] + "/" + name
        if sql:
            engine = create_engine(url)
            with engine.begin() as conn:
                conn.execute(text(sql))
            engine.dispose()
        return url

    yield make
    with admin.connect() as conn:
        for name in made:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def _ready(database_url, redis_url, migrations=None):
    app = create_app("testing", {"DATABASE_URL": database_url, "REDIS_URL": redis_url})
    if migrations:
        app.extensions["migrate"].directory = str(migrations)
    try:
        return app.test_client().get("/health/ready")
    finally:
        with app.app_context():
            db.engine.dispose()


def test_not_ready_when_the_schema_is_missing(scratch_db, redis_server):
    """An empty database (a restore that left nothing behind) answers SELECT 1 but is not ready."""
    response = _ready(scratch_db(), redis_server["url"])
    assert response.status_code == 503
    assert response.get_json()["checks"] == {
        "database": "failed: schema missing (no migration applied; this release needs 0001)", "redis": "ok"}


def test_not_ready_when_the_schema_is_behind_the_release(migrated_db, redis_server, tmp_path):
    """A release shipping migration 0002 against a database still at 0001."""
    migrations = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, migrations)
    (migrations / "versions" / "0002_add_a_column.py").write_text(
        'revision = "0002"\ndown_revision = "0001"\nbranch_labels = None\ndepends_on = None\n\n\n'
        "def upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n")
    response = _ready(migrated_db, redis_server["url"], migrations)
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == "failed: schema behind (at 0001; this release needs 0002)"


def test_ready_when_a_newer_release_migrated_the_schema(scratch_db, redis_server):
    """After a rollback the schema stays at the newer release's revision (expand, then contract)."""
    url = scratch_db("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY); "
                     "INSERT INTO alembic_version VALUES ('9999_from_a_newer_release')")
    response = _ready(url, redis_server["url"])
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok"}
