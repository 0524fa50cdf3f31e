"""The server-rendered pages: the notes, newest first, and a form to add one."""
from __future__ import annotations

import json

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from . import notes
from .extensions import db
from .models import Note

bp = Blueprint("pages", __name__)


@bp.after_request
def _not_stored(response):
    # Pages carry the session's CSRF token and flash messages: no shared caches.
    response.cache_control.no_store = True
    return response


def _home(text: str = "", error: str | None = None, status: int = 200):
    body, _cached = notes.recent_listing()
    return render_template("index.html", notes=json.loads(body)["notes"], text=text,
                           error=error, max_length=notes.MAX_LENGTH), status


@bp.get("/")
def index():
    return _home()


@bp.post("/notes")
def create_note():
    raw = request.form.get("text", "")
    try:
        text = notes.clean_text(raw)
    except ValueError as exc:
        return _home(text=raw, error=str(exc).capitalize() + ".", status=400)
    notes.add(text)
    flash("Note added.")
    return redirect(url_for("pages.index"), code=303)


@bp.get("/notes/<int:note_id>")
def note(note_id: int):
    found = db.session.get(Note, note_id)
    if found is None:
        abort(404, description=f"There is no note {note_id}.")
    return render_template("note.html", note=found.to_dict())
