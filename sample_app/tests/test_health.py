import socket

from flaskstack_sample import create_app


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
