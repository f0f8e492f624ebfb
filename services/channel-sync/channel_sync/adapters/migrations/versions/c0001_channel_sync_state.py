"""Channel-sync's projection, positions, pending rows, accepted rows and failures.

Revision ID: c0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_sync_purchase_orders",
        sa.Column("po_id", sa.String(), primary_key=True),
        sa.Column("lines", sa.Text(), nullable=False),
    )
    op.create_table(
        "channel_sync_containers",
        sa.Column("container_id", sa.String(), primary_key=True),
        sa.Column("eta", sa.String()),
        sa.Column("lines", sa.Text(), nullable=False),
    )
    op.create_table(
        "channel_sync_products",
        sa.Column("sku", sa.String(), primary_key=True),
        sa.Column("name", sa.String()),
    )
    op.create_table(
        "channel_sync_positions",
        sa.Column("sku", sa.String(), primary_key=True),
        sa.Column("available_qty", sa.BigInteger(), nullable=False),
        sa.Column("backorder_qty", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "channel_sync_meta",
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.create_table("channel_sync_receipts", sa.Column("event_id", sa.String(), primary_key=True))
    op.create_table(
        "channel_sync_sources",
        sa.Column("source", sa.String(), primary_key=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "channel_sync_pending",
        sa.Column("channel", sa.String(), primary_key=True),
        sa.Column("sku", sa.String(), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "channel_sync_accepted",
        sa.Column("channel", sa.String(), primary_key=True),
        sa.Column("sku", sa.String(), primary_key=True),
        sa.Column("row", sa.Text(), nullable=False),
        sa.Column("batch", sa.Integer(), nullable=False),
        sa.Column("accepted_at", sa.String(), nullable=False),
    )
    op.create_table(
        "channel_sync_failures",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("sku", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("status", sa.Integer()),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("row", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("batch", sa.Integer(), nullable=False),
        sa.Column("failed_at", sa.String(), nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_channel_sync_failures_open", "channel_sync_failures", ["channel", "resolved"])
    op.create_table(
        "channel_sync_channels",
        sa.Column("channel", sa.String(), primary_key=True),
        sa.Column("destination", sa.String(), nullable=False),
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.Column("batches", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "channel_sync_channels", "channel_sync_failures", "channel_sync_accepted",
        "channel_sync_pending", "channel_sync_sources", "channel_sync_receipts",
        "channel_sync_meta", "channel_sync_positions", "channel_sync_products",
        "channel_sync_containers", "channel_sync_purchase_orders",
    ):
        op.drop_table(table)
