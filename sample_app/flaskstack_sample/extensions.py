"""Extension objects, bound to an app in create_app()."""
from __future__ import annotations

import redis
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()


def connect(app: Flask, *, decode_responses: bool) -> redis.Redis:
    """A client (its own connection pool) for the app's REDIS_URL."""
    timeout = app.config["HEALTH_TIMEOUT_SECONDS"]
    return redis.Redis.from_url(
        app.config["REDIS_URL"],
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        decode_responses=decode_responses,
    )


class RedisClient:
    """One connection pool per app, created from REDIS_URL."""

    def __init__(self) -> None:
        self._client: redis.Redis | None = None

    def init_app(self, app: Flask) -> None:
        self._client = connect(app, decode_responses=True)
        app.extensions["redis"] = self

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            raise RuntimeError("redis_client.init_app() was not called")
        return self._client


redis_client = RedisClient()
