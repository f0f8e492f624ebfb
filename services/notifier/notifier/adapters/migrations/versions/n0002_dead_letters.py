"""The notifier's dead letters: records it could not take in, with the reason.

Revision ID: n0002
Revises: n0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op
from backorders_platform import consumer_store

revision = "n0002"
down_revision = "n0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    consumer_store.create_dead_letter_table("notifier_dead_letters")


def downgrade() -> None:
    op.drop_table("notifier_dead_letters")
