"""Liveness (/health) and readiness (/health/ready) endpoints."""
from __future__ import annotations

import logging
import socket

from alembic.script import ScriptDirectory
from flask import Blueprint, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from .extensions import db, redis_client

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/health")
def alive():
    """The process answers; no dependency is consulted. Names the release and the
    host that answered (behind a load balancer: which app host it was)."""
    return jsonify(status="ok", release=current_app.config["RELEASE"], host=socket.gethostname())


class SchemaNotReady(RuntimeError):
    """The database answers but its schema is not the one this release runs on."""


def _release_migrations() -> tuple[frozenset[str], frozenset[str]]:
    """(every revision, the heads) of the migrations this release ships, read once per app."""
    found = current_app.extensions.get("flaskstack_migrations")
    if found is None:
        scripts = ScriptDirectory(current_app.extensions["migrate"].directory)
        found = (frozenset(rev.revision for rev in scripts.walk_revisions()),
                 frozenset(scripts.get_heads()))
        current_app.extensions["flaskstack_migrations"] = found
    return found


def _check_database() -> None:
    """The database answers and its schema is at this release's migration head.

    Missing (no alembic_version: an empty or wrongly restored database) or behind
    (a revision of this release that is not its head) is not ready. A revision this
    release does not know was written by a newer release: rolling back keeps the
    schema (migrations are expand-then-contract), so that counts as ready."""
    known, heads = _release_migrations()
    with db.engine.connect() as conn:
        try:
            current = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
        except ProgrammingError:
            current = set()
    if not heads:
        return
    needs = ", ".join(sorted(heads))
    if not current:
        raise SchemaNotReady(f"schema missing (no migration applied; this release needs {needs})")
    if current <= known and current != heads:
        raise SchemaNotReady(f"schema behind (at {', '.join(sorted(current))}; this release needs {needs})")


def _check_redis() -> None:
    if not redis_client.client.ping():
        raise RuntimeError("PING was not answered")


@bp.get("/health/ready")
def ready():
    """200 when PostgreSQL (at this release's migration head) and Redis answer, else 503 naming what failed."""
    checks = {}
    for name, check in (("database", _check_database), ("redis", _check_redis)):
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            # The class name only: messages can carry host names or credentials
            # (the schema's own message names migration revisions, nothing else).
            detail = str(exc) if isinstance(exc, SchemaNotReady) else type(exc).__name__
            checks[name] = f"failed: {detail}"
            log.warning("readiness check failed", extra={"check": name, "error": type(exc).__name__})
    ok = all(value == "ok" for value in checks.values())
    status = 200 if ok else 503
    body = jsonify(status="ready" if ok else "unavailable", checks=checks,
                   release=current_app.config["RELEASE"])
    return body, status
