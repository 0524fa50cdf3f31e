"""A small JSON API: notes stored in PostgreSQL, the listing cached in Redis."""
from __future__ import annotations

import json
import logging

from flask import Blueprint, current_app, g, jsonify, request
from redis.exceptions import RedisError
from sqlalchemy import select

from .extensions import db, redis_client
from .models import Note

bp = Blueprint("api", __name__)
log = logging.getLogger(__name__)

LIST_CACHE_KEY = "flaskstack:notes:recent"
HITS_KEY = "flaskstack:hits:api"
LIST_LIMIT = 50


def _count_hit() -> None:
    try:
        redis_client.client.incr(HITS_KEY)
    except RedisError:
        log.warning("hit counter unavailable")


def _drop_cache() -> None:
    try:
        redis_client.client.delete(LIST_CACHE_KEY)
    except RedisError:
        log.warning("could not drop the cached listing")


@bp.errorhandler(500)
def _json_server_error(error):
    # Flask has logged the exception (with the request id); the client gets no details.
    return jsonify(error="Internal Server Error", request_id=g.request_id), 500


@bp.errorhandler(400)
@bp.errorhandler(404)
@bp.errorhandler(405)
@bp.errorhandler(413)
def _json_error(error):
    return jsonify(error=error.name, detail=error.description), error.code


@bp.post("/notes")
def create_note():
    _count_hit()
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
        return jsonify(error="Bad Request", detail='send JSON like {"text": "..."}'), 400
    text = payload["text"].strip()
    if not text or len(text) > 500:
        return jsonify(error="Bad Request", detail="text must be 1-500 characters"), 400
    note = Note(text=text)
    db.session.add(note)
    db.session.commit()
    _drop_cache()
    log.info("note created", extra={"note_id": note.id})
    return jsonify(note.to_dict()), 201


@bp.get("/notes")
def list_notes():
    _count_hit()
    try:
        cached = redis_client.client.get(LIST_CACHE_KEY)
    except RedisError:
        cached = None
    if cached is not None:
        response = current_app.response_class(cached, mimetype="application/json")
        response.headers["X-Cache"] = "hit"
        return response
    notes = db.session.scalars(select(Note).order_by(Note.id.desc()).limit(LIST_LIMIT)).all()
    body = json.dumps({"notes": [note.to_dict() for note in notes]})
    try:
        redis_client.client.set(LIST_CACHE_KEY, body, ex=current_app.config["CACHE_TTL_SECONDS"])
    except RedisError:
        log.warning("could not cache the listing")
    response = current_app.response_class(body, mimetype="application/json")
    response.headers["X-Cache"] = "miss"
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
