"""The recalculator's state, processed ids, positions, outbox and dead letters.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(), primary_key=True),
        sa.Column("company_id", sa.String(), nullable=False),
        sa.Column("order_date", sa.BigInteger(), nullable=False),
        sa.Column("backorder_status", sa.String(), nullable=False),
        sa.Column("backorder_qty", sa.Integer(), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("doc", sa.Text(), nullable=False),
    )
    op.create_index("ix_orders_backorder_status", "orders", ["backorder_status"])
    op.create_table(
        "stock",
        sa.Column("sku", sa.String(), primary_key=True),
        sa.Column("warehouse_id", sa.String(), primary_key=True),
        sa.Column("qty", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "warehouses",
        sa.Column("warehouse_id", sa.String(), primary_key=True),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("name", sa.String()),
    )
    op.create_table(
        "products",
        sa.Column("sku", sa.String(), primary_key=True),
        sa.Column("replacement_sku", sa.String()),
        sa.Column("name", sa.String()),
    )
    op.create_table(
        "sku_backorders",
        sa.Column("sku", sa.String(), primary_key=True),
        sa.Column("backorder_qty", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_sku_backorders_qty", "sku_backorders", ["backorder_qty"])
    op.create_table(
        "settings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("doc", sa.Text(), nullable=False),
    )
    op.create_table("processed_events", sa.Column("event_id", sa.String(), primary_key=True))
    op.create_table(
        "meta",
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.create_table(
        "positions",
        sa.Column("source", sa.String(), primary_key=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(), nullable=False, unique=True),
        sa.Column("event_type", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
    )
    op.create_table(
        "dead_letters",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("position", sa.BigInteger()),
        sa.Column("partition", sa.Integer()),
        sa.Column("event_id", sa.String()),
        sa.Column("event_type", sa.String()),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "dead_letters", "outbox", "positions", "meta", "processed_events", "settings",
        "sku_backorders", "products", "warehouses", "stock", "orders",
    ):
        op.drop_table(table)
