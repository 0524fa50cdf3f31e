from sqlalchemy import text

from flaskstack_sample.api import HITS_KEY, LIST_CACHE_KEY
from flaskstack_sample.extensions import db, redis_client


def test_a_note_is_written_to_postgresql(app, client):
    response = client.post("/api/notes", json={"text": "hello"})
    assert response.status_code == 201
    note = response.get_json()
    with app.app_context():
        row = db.session.execute(text("SELECT text FROM notes WHERE id = :id"), {"id": note["id"]}).one()
    assert row.text == "hello"
    assert client.get(f"/api/notes/{note['id']}").get_json()["text"] == "hello"


def test_the_listing_is_cached_in_redis_and_dropped_on_write(app, client):
    client.post("/api/notes", json={"text": "first"})
    first = client.get("/api/notes")
    assert first.headers["X-Cache"] == "miss"
    with app.app_context():
        assert redis_client.client.ttl(LIST_CACHE_KEY) > 0
    second = client.get("/api/notes")
    assert second.headers["X-Cache"] == "hit"
    assert second.get_json() == first.get_json()
    client.post("/api/notes", json={"text": "second"})
    third = client.get("/api/notes")
    assert third.headers["X-Cache"] == "miss"
    assert [n["text"] for n in third.get_json()["notes"]] == ["second", "first"]


def test_api_hits_are_counted_in_redis(app, client):
    for _ in range(3):
        client.get("/api/notes")
    assert client.get("/api/stats").get_json() == {"api_hits": 3}
    with app.app_context():
        assert redis_client.client.get(HITS_KEY) == "3"


def test_bad_input_is_a_json_400(client):
    for payload in ({}, {"text": ""}, {"text": 5}, {"text": "x" * 501}):
        response = client.post("/api/notes", json=payload)
        assert response.status_code == 400, payload
        assert response.get_json()["error"] == "Bad Request"
    assert client.post("/api/notes", data="not json").status_code == 400


def test_missing_note_is_a_json_404(client):
    response = client.get("/api/notes/999")
    assert response.status_code == 404
    assert response.get_json()["error"] == "Not Found"


def test_the_static_asset_is_served(client):
    response = client.get("/static/app.css")
    assert response.status_code == 200
    assert b"font-family" in response.data


def test_a_server_error_is_json_without_details(app, client, monkeypatch):
    from flaskstack_sample import api

    def broken(*args, **kwargs):
        raise RuntimeError("database exploded: password=hunter2")

    monkeypatch.setattr(api.db.session, "get", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production (TESTING re-raises)
    response = client.get("/api/notes/1", headers={"X-Request-ID": "req-0123456789"})
    assert response.status_code == 500
    assert response.get_json() == {"error": "Internal Server Error", "request_id": "req-0123456789"}
    assert b"hunter2" not in response.data
