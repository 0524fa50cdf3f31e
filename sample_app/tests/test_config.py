import pytest

from flaskstack_sample import create_app
from flaskstack_sample.config import ConfigError

GOOD_KEY = "k" * 40
PG = "postgresql+psycopg://app@127.0.0.1/app"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("APP_ENV", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "SENTRY_DSN", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)


def test_production_is_the_default_and_refuses_to_start_without_secrets():
    with pytest.raises(ConfigError, match="SECRET_KEY and DATABASE_URL"):
        create_app()


def test_production_refuses_a_missing_database_url(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", GOOD_KEY)
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        create_app("production")


@pytest.mark.parametrize("key", ["short", ""])
def test_production_refuses_a_weak_or_empty_secret_key(monkeypatch, key):
    monkeypatch.setenv("SECRET_KEY", key)
    monkeypatch.setenv("DATABASE_URL", PG)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app("production")


def test_production_refuses_sqlite(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", GOOD_KEY)
    monkeypatch.setenv("DATABASE_URL", "sqlite:///app.db")
    with pytest.raises(ConfigError, match="SQLite"):
        create_app("production")


def test_production_settings(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", GOOD_KEY)
    monkeypatch.setenv("DATABASE_URL", PG)
    monkeypatch.setenv("DB_POOL_SIZE", "7")
    monkeypatch.setenv("DB_POOL_RECYCLE_SECONDS", "600")
    app = create_app()
    assert app.config["APP_ENV"] == "production"
    assert app.debug is False and app.config["DEBUG"] is False
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["PREFERRED_URL_SCHEME"] == "https"
    engine = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert engine["pool_size"] == 7 and engine["pool_recycle"] == 600
    assert engine["pool_pre_ping"] is True


def test_debug_stays_off_even_when_asked(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", PG)
    app = create_app("development", {"DEBUG": True})
    assert app.debug is False


def test_unknown_environment_is_an_error():
    with pytest.raises(ConfigError, match="APP_ENV must be one of"):
        create_app("staging-ish")


def test_bad_integer_names_the_variable(monkeypatch):
    monkeypatch.setenv("DB_POOL_SIZE", "lots")
    with pytest.raises(ConfigError, match="DB_POOL_SIZE"):
        create_app("development")


def test_sentry_only_when_a_dsn_is_set(monkeypatch):
    import sentry_sdk

    calls = []
    monkeypatch.setattr(sentry_sdk, "init", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setenv("DATABASE_URL", PG)
    create_app("development")
    assert calls == []
    monkeypatch.setenv("SENTRY_DSN", "https://public@sentry.invalid/1")
    create_app("development")
    assert calls[0]["dsn"] == "https://public@sentry.invalid/1"
    assert calls[0]["send_default_pii"] is False
