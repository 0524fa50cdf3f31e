"""Server-side sessions in Redis (Flask-Session), so a flash message set by one
gunicorn worker or host is shown by whichever answers the next request.

Only the HTML pages have sessions: requests to /health*, /api/* and /static/*
get Flask's null session, so they never read or write Redis for it and never
send a session cookie.
"""
from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SessionInterface
from flask_session import Session

from .extensions import connect

SESSIONLESS_PATHS = ("/health", "/api")
SESSIONLESS_PREFIXES = ("/health/", "/api/", "/static/")


def sessionless(path: str) -> bool:
    return path in SESSIONLESS_PATHS or path.startswith(SESSIONLESS_PREFIXES)


class PathScopedSessions(SessionInterface):
    """Flask-Session's interface, skipped for the sessionless paths."""

    def __init__(self, inner: SessionInterface) -> None:
        self.inner = inner

    def open_session(self, app: Flask, request: Request):
        if sessionless(request.path):
            return None  # Flask substitutes a NullSession, which is never saved
        return self.inner.open_session(app, request)

    def save_session(self, app: Flask, session, response) -> None:
        self.inner.save_session(app, session, response)


def init_app(app: Flask) -> None:
    # Flask-Session stores msgpack bytes: a client of its own, without the
    # decode_responses of the app's redis_client.
    app.config.setdefault("SESSION_REDIS", connect(app, decode_responses=False))
    Session(app)
    app.session_interface = PathScopedSessions(app.session_interface)
