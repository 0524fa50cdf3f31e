"""Notes: the one place that validates, stores and lists them (the JSON API and
the HTML pages both call it), with the listing cached in Redis."""
from __future__ import annotations

import json
import logging

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import select

from .extensions import db, redis_client
from .models import Note

log = logging.getLogger(__name__)

LIST_CACHE_KEY = "flaskstack:notes:recent"
LIST_LIMIT = 50
MAX_LENGTH = 500
LENGTH_ERROR = f"text must be 1-{MAX_LENGTH} characters"


def clean_text(raw: str) -> str:
    """The note's text as stored, or ValueError(LENGTH_ERROR)."""
    text = raw.strip()
    if not text or len(text) > MAX_LENGTH:
        raise ValueError(LENGTH_ERROR)
    return text


def drop_cache() -> None:
    try:
        redis_client.client.delete(LIST_CACHE_KEY)
    except RedisError:
        log.warning("could not drop the cached listing")


def add(text: str) -> Note:
    """Store an already cleaned text; the cached listing is dropped."""
    note = Note(text=text)
    db.session.add(note)
    db.session.commit()
    drop_cache()
    log.info("note created", extra={"note_id": note.id})
    return note


def recent_listing() -> tuple[str, bool]:
    """The newest notes as the JSON body ``{"notes": [...]}`` and whether it came
    from the Redis cache (a miss reads PostgreSQL and caches the body)."""
    try:
        cached = redis_client.client.get(LIST_CACHE_KEY)
    except RedisError:
        cached = None
    if cached is not None:
        return cached, True
    notes = db.session.scalars(select(Note).order_by(Note.id.desc()).limit(LIST_LIMIT)).all()
    body = json.dumps({"notes": [note.to_dict() for note in notes]})
    try:
        redis_client.client.set(LIST_CACHE_KEY, body, ex=current_app.config["CACHE_TTL_SECONDS"])
    except RedisError:
        log.warning("could not cache the listing")
    return body, False
