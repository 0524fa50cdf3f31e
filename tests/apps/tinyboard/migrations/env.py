"""Alembic environment (Flask-Migrate): migrations run on the app's engine.
The version table has its own name so tinyboard can share a database."""
from alembic import context
from flask import current_app

target_db = current_app.extensions["migrate"].db

with target_db.engine.connect() as connection:
    context.configure(connection=connection, target_metadata=target_db.metadata,
                      version_table="tinyboard_alembic_version")
    with context.begin_transaction():
        context.run_migrations()
