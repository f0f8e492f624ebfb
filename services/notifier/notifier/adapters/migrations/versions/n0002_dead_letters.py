"""The notifier's dead letters: records it could not take in, with the reason.

Revision ID: n0002
Revises: n0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "n0002"
down_revision = "n0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifier_dead_letters",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String()),
        sa.Column("event_type", sa.String()),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_notifier_dead_letters_recorded", "notifier_dead_letters", ["recorded_at"])


def downgrade() -> None:
    op.drop_table("notifier_dead_letters")
