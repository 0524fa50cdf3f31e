"""flaskstack sample app: a small Flask service backed by PostgreSQL and Redis.

``create_app()`` is the application factory; ``APP_ENV`` (development, testing,
production; default production) selects the configuration class.
"""
from __future__ import annotations

import os

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import config as config_module
from .extensions import csrf, db, migrate, redis_client
from .logs import configure_logging, install_request_ids

__version__ = "1.1.0"

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")


def create_app(env: str | None = None, overrides: dict | None = None) -> Flask:
    """Build the app for the environment ``env`` (default: ``$APP_ENV``)."""
    config = config_module.load(env, overrides)

    app = Flask(__name__)
    app.config.from_mapping(config)
    configure_logging(app.config["LOG_LEVEL"])

    if app.config.get("SENTRY_DSN"):
        _init_sentry(app)

    # Exactly one proxy (nginx) sits in front of gunicorn: trust one hop of
    # X-Forwarded-For/-Proto/-Host/-Port and nothing more.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1)

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR)
    redis_client.init_app(app)
    install_request_ids(app)

    from . import sessions, web
    from .api import bp as api_bp
    from .health import bp as health_bp
    from .pages import bp as pages_bp

    sessions.init_app(app)
    # The HTML forms carry a CSRF token; the JSON API is not cookie-authenticated.
    csrf.init_app(app)
    csrf.exempt(api_bp)
    web.init_app(app)

    app.register_blueprint(health_bp)
    app.register_blueprint(api_bp, url_prefix="/api")
    app.register_blueprint(pages_bp)
    return app


def _init_sentry(app: Flask) -> None:
    import sentry_sdk

    sentry_sdk.init(
        dsn=app.config["SENTRY_DSN"],
        environment=app.config["APP_ENV"],
        release=app.config["RELEASE"],
        send_default_pii=False,
        traces_sample_rate=0.0,
    )
