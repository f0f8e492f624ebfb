"""Channel-sync's dead letters: records it could not take in, with the reason.

Revision ID: c0003
Revises: c0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op
from backorders_platform import consumer_store

revision = "c0003"
down_revision = "c0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    consumer_store.create_dead_letter_table("channel_sync_dead_letters")


def downgrade() -> None:
    op.drop_table("channel_sync_dead_letters")
