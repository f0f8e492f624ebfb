"""Retention: containers keep the time of the update they hold, and failures are indexed
per channel and SKU (the latest one of a SKU; pruning those superseded).

Revision ID: c0004
Revises: c0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0004"
down_revision = "c0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channel_sync_containers") as batch:
        batch.add_column(sa.Column("updated_at", sa.String()))
    op.create_index("ix_channel_sync_failures_sku", "channel_sync_failures", ["channel", "sku", "seq"])


def downgrade() -> None:
    op.drop_index("ix_channel_sync_failures_sku", "channel_sync_failures")
    with op.batch_alter_table("channel_sync_containers") as batch:
        batch.drop_column("updated_at")
