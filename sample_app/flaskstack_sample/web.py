"""What the HTML pages share: cache-busted static URLs, the footer's facts and
the error pages (HTML for browsers, JSON under /api/)."""
from __future__ import annotations

import hashlib
import logging
import os
import socket
from datetime import datetime, timezone

from flask import Flask, current_app, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.security import safe_join

from . import __version__
from .api import json_error, json_server_error

log = logging.getLogger(__name__)

HASH_LENGTH = 12


def file_hash(folder: str, filename: str) -> str | None:
    """The first 12 hex digits of the file's SHA-256, None when there is no such file."""
    path = safe_join(folder, filename)
    if path is None or not os.path.isfile(path):
        return None
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()[:HASH_LENGTH]


def _install_static_hashes(app: Flask) -> None:
    """url_for('static', filename=F) gets ?v=<hash of F>, computed once per process:
    nginx serves /static/ with a long immutable lifetime, and a new release (new
    processes) links new URLs for changed files at once."""
    hashes: dict[str, str | None] = {}

    @app.url_defaults
    def _static_version(endpoint: str, values: dict) -> None:
        if endpoint != "static" or "filename" not in values or "v" in values:
            return
        filename = values["filename"]
        if filename not in hashes:
            hashes[filename] = file_hash(app.static_folder, filename)
        if hashes[filename]:
            values["v"] = hashes[filename]


def _footer() -> dict:
    return {
        "app_version": __version__,
        "release": current_app.config["RELEASE"],
        "served_by": socket.gethostname(),
    }


def _when(iso: str) -> str:
    """An ISO timestamp as shown on the pages: minutes, in UTC."""
    return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _wants_json() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def _http_error(error: HTTPException):
    # Reached for errors no blueprint handled: unknown URLs and methods, CSRF
    # failures, errors in the pages. Under /api/ the API's JSON shape.
    if _wants_json():
        return json_error(error)
    return render_template("error.html", error=error), error.code


def _server_error(error: InternalServerError):
    if _wants_json():
        return json_server_error(error)
    return render_template("error.html", error=error), 500


def init_app(app: Flask) -> None:
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    _install_static_hashes(app)
    app.context_processor(_footer)
    app.add_template_filter(_when, "when")
    for code in (400, 404, 405, 413):
        app.register_error_handler(code, _http_error)
    app.register_error_handler(500, _server_error)
