"""Alembic environment: runs migrations on the engine of the Flask app."""
from __future__ import annotations

from alembic import context
from flask import current_app

target_db = current_app.extensions["migrate"].db
target_metadata = target_db.metadata


def run_offline() -> None:
    context.configure(
        url=target_db.engine.url.render_as_string(hide_password=False),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    with target_db.engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
