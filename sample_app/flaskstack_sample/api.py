"""A small JSON API: notes stored in PostgreSQL, the listing cached in Redis."""
from __future__ import annotations

import logging

from flask import Blueprint, current_app, g, jsonify, request
from redis.exceptions import RedisError

from . import notes
from .extensions import db, redis_client
from .models import Note
from .notes import LIST_CACHE_KEY  # noqa: F401 - the cache key, importable from here as before

bp = Blueprint("api", __name__)
log = logging.getLogger(__name__)

HITS_KEY = "flaskstack:hits:api"


def _count_hit() -> None:
    try:
        redis_client.client.incr(HITS_KEY)
    except RedisError:
        log.warning("hit counter unavailable")


def json_server_error(error):
    # Flask has logged the exception (with the request id); the client gets no details.
    return jsonify(error="Internal Server Error", request_id=g.request_id), 500


def json_error(error):
    return jsonify(error=error.name, detail=error.description), error.code


bp.register_error_handler(500, json_server_error)
for _code in (400, 404, 405, 413):
    bp.register_error_handler(_code, json_error)


@bp.post("/notes")
def create_note():
    _count_hit()
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
        return jsonify(error="Bad Request", detail='send JSON like {"text": "..."}'), 400
    try:
        text = notes.clean_text(payload["text"])
    except ValueError as exc:
        return jsonify(error="Bad Request", detail=str(exc)), 400
    note = notes.add(text)
    return jsonify(note.to_dict()), 201


@bp.get("/notes")
def list_notes():
    _count_hit()
    body, cached = notes.recent_listing()
    response = current_app.response_class(body, mimetype="application/json")
    response.headers["X-Cache"] = "hit" if cached else "miss"
    return response


@bp.get("/notes/<int:note_id>")
def get_note(note_id: int):
    _count_hit()
    note = db.session.get(Note, note_id)
    if note is None:
        return jsonify(error="Not Found", detail=f"no note {note_id}"), 404
    return jsonify(note.to_dict())


@bp.get("/stats")
def stats():
    try:
        hits = int(redis_client.client.get(HITS_KEY) or 0)
    except RedisError:
        return jsonify(error="Service Unavailable", detail="redis is not reachable"), 503
    return jsonify(api_hits=hits)
