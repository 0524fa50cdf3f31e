"""messages table

Revision ID: a1
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "a1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "tinyboard_messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("body", sa.String(length=500), nullable=False),
    )


def downgrade():
    op.drop_table("tinyboard_messages")
