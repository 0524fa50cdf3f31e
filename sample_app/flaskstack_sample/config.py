"""Configuration classes, selected by ``APP_ENV``; values come from the environment.

Production refuses to start without SECRET_KEY and DATABASE_URL: there is no
fallback for either.  DEBUG is off in every class.
"""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path


class ConfigError(RuntimeError):
    """The environment does not describe a runnable configuration."""


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _release() -> str:
    """The deployed release: the REVISION file next to the package, if any."""
    revision = Path(__file__).resolve().parent.parent / "REVISION"
    try:
        return revision.read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return os.environ.get("APP_RELEASE", "development")


class Config:
    APP_ENV = "base"
    DEBUG = False
    TESTING = False
    SECRET_KEY: str | None = None
    DATABASE_URL: str | None = None
    REDIS_URL = "redis://127.0.0.1:6379/0"
    LOG_LEVEL = "INFO"
    SENTRY_DSN = ""
    CACHE_TTL_SECONDS = 30
    HEALTH_TIMEOUT_SECONDS = 2
    # Server-side sessions in Redis (sessions.py); the cookie only holds the id.
    SESSION_TYPE = "redis"
    SESSION_KEY_PREFIX = "flaskstack:session:"
    SESSION_PERMANENT = True
    PERMANENT_SESSION_LIFETIME = timedelta(hours=12)
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # The forms' CSRF token is valid as long as the session that holds it.
    WTF_CSRF_TIME_LIMIT = None
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    MAX_CONTENT_LENGTH = 1024 * 1024

    @classmethod
    def from_environment(cls) -> dict:
        values = {k: getattr(cls, k) for k in dir(cls) if k.isupper()}
        for name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "LOG_LEVEL", "SENTRY_DSN"):
            if os.environ.get(name):
                values[name] = os.environ[name]
        values["CACHE_TTL_SECONDS"] = _int("CACHE_TTL_SECONDS", cls.CACHE_TTL_SECONDS)
        values["HEALTH_TIMEOUT_SECONDS"] = _int("HEALTH_TIMEOUT_SECONDS", cls.HEALTH_TIMEOUT_SECONDS)
        values["SQLALCHEMY_ENGINE_OPTIONS"] = {
            "pool_size": _int("DB_POOL_SIZE", 5),
            "max_overflow": _int("DB_MAX_OVERFLOW", 5),
            "pool_recycle": _int("DB_POOL_RECYCLE_SECONDS", 1800),
            "pool_pre_ping": True,
            "pool_timeout": _int("DB_POOL_TIMEOUT_SECONDS", 10),
            "connect_args": {"connect_timeout": values["HEALTH_TIMEOUT_SECONDS"]},
        }
        values["RELEASE"] = _release()
        return values


class DevelopmentConfig(Config):
    APP_ENV = "development"
    SECRET_KEY = "development-only-not-secret"
    DATABASE_URL = "postgresql+psycopg://flaskapp@127.0.0.1/flaskapp"
    LOG_LEVEL = "DEBUG"


class TestingConfig(Config):
    APP_ENV = "testing"
    TESTING = True
    SECRET_KEY = "testing-only-not-secret"
    CACHE_TTL_SECONDS = 5


class ProductionConfig(Config):
    APP_ENV = "production"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    PREFERRED_URL_SCHEME = "https"

    @classmethod
    def from_environment(cls) -> dict:
        values = super().from_environment()
        missing = [name for name in ("SECRET_KEY", "DATABASE_URL") if not values.get(name)]
        if missing:
            raise ConfigError(
                "production needs " + " and ".join(missing) + " in the environment (no fallback)"
            )
        if len(values["SECRET_KEY"]) < 32:
            raise ConfigError("production needs a SECRET_KEY of at least 32 characters")
        if values["DATABASE_URL"].startswith("sqlite"):
            raise ConfigError("production needs PostgreSQL: DATABASE_URL must not be SQLite")
        return values


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def load(env: str | None = None, overrides: dict | None = None) -> dict:
    """Configuration for ``env`` (default ``$APP_ENV``, else production)."""
    name = env or os.environ.get("APP_ENV") or "production"
    try:
        cls = CONFIGS[name]
    except KeyError as exc:
        raise ConfigError(f"APP_ENV must be one of {', '.join(CONFIGS)}, got {name!r}") from exc
    values = cls.from_environment()
    values.update(overrides or {})
    values["DEBUG"] = False
    # Derived once, after overrides: DATABASE_URL is the only source.
    values["SQLALCHEMY_DATABASE_URI"] = values.get("DATABASE_URL")
    if not values["SQLALCHEMY_DATABASE_URI"]:
        raise ConfigError("DATABASE_URL is not set")
    return values
