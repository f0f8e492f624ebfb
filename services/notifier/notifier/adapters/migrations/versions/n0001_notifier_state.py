"""The notifier's projection of orders, its notifications and its consumed positions.

Revision ID: n0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "n0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifier_orders",
        sa.Column("order_id", sa.String(), primary_key=True),
        sa.Column("known", sa.Boolean(), nullable=False),
        sa.Column("company_id", sa.String()),
        sa.Column("parent_order_id", sa.String()),
        sa.Column("customer", sa.Text()),
        sa.Column("order_date", sa.String()),
        sa.Column("lines", sa.Text(), nullable=False),
        sa.Column("last_change", sa.Text()),
    )
    op.create_index("ix_notifier_orders_parent", "notifier_orders", ["parent_order_id"])
    op.create_table(
        "notifier_notifications",
        sa.Column("notification_id", sa.String(), primary_key=True),
        sa.Column("event_id", sa.String(), nullable=False, unique=True),
        sa.Column("order_id", sa.String(), nullable=False),
        sa.Column("company_id", sa.String(), nullable=False),
        sa.Column("template", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("event_time", sa.BigInteger(), nullable=False),
        sa.Column("change", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float()),
        sa.Column("claimed_by", sa.String()),
        sa.Column("claimed_at", sa.Float()),
        sa.Column("last_error", sa.Text()),
        sa.Column("message_id", sa.String()),
        sa.Column("recipient", sa.String()),
        sa.Column("updated_at", sa.Float()),
    )
    op.create_index("ix_notifier_notifications_status", "notifier_notifications",
                    ["status", "next_attempt_at"])
    op.create_index("ix_notifier_notifications_order", "notifier_notifications",
                    ["order_id", "event_time"])
    op.create_table(
        "notifier_positions",
        sa.Column("source", sa.String(), primary_key=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notifier_positions")
    op.drop_table("notifier_notifications")
    op.drop_table("notifier_orders")
