"""Retention: when an order was closed, the notifier's business clock and pruning horizon,
and the indexes pruning reads.

Revision ID: n0003
Revises: n0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "n0003"
down_revision = "n0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifier_orders") as batch:
        batch.add_column(sa.Column("closed_at", sa.BigInteger()))
    op.create_index("ix_notifier_orders_closed", "notifier_orders", ["closed_at"])
    op.create_index("ix_notifier_notifications_done", "notifier_notifications", ["status", "event_time"])
    op.create_table(
        "notifier_meta",
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notifier_meta")
    op.drop_index("ix_notifier_notifications_done", "notifier_notifications")
    op.drop_index("ix_notifier_orders_closed", "notifier_orders")
    with op.batch_alter_table("notifier_orders") as batch:
        batch.drop_column("closed_at")
