"""Liveness (/health) and readiness (/health/ready) endpoints."""
from __future__ import annotations

import logging
import socket

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from .extensions import db, redis_client

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/health")
def alive():
    """The process answers; no dependency is consulted. Names the release and the
    host that answered (behind a load balancer: which app host it was)."""
    return jsonify(status="ok", release=current_app.config["RELEASE"], host=socket.gethostname())


def _check_database() -> None:
    with db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _check_redis() -> None:
    if not redis_client.client.ping():
        raise RuntimeError("PING was not answered")


@bp.get("/health/ready")
def ready():
    """200 when PostgreSQL and Redis answer, else 503 naming what failed."""
    checks = {}
    for name, check in (("database", _check_database), ("redis", _check_redis)):
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            # The class name only: messages can carry host names or credentials.
            checks[name] = f"failed: {type(exc).__name__}"
            log.warning("readiness check failed", extra={"check": name, "error": type(exc).__name__})
    ok = all(value == "ok" for value in checks.values())
    status = 200 if ok else 503
    body = jsonify(status="ready" if ok else "unavailable", checks=checks,
                   release=current_app.config["RELEASE"])
    return body, status
