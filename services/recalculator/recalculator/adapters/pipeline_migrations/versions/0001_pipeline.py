"""The sharded recalculator's hand-over tables.

Revision ID: p0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "p0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "causes",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("cause_id", sa.String(), nullable=False),
        sa.Column("cause_type", sa.String(), nullable=False),
        sa.Column("time", sa.String(), nullable=False),
        sa.Column("publish", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "routed",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("idx", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("cause_id", sa.String(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
    )
    op.create_index("ix_routed_shard_seq", "routed", ["shard", "seq", "idx"])
    op.create_table(
        "handoffs",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("payload", sa.Text(), nullable=False),
    )
    op.create_table(
        "partials",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("shard", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("order_id", sa.String(), primary_key=True),
        sa.Column("payload", sa.Text(), nullable=False),
    )
    op.create_table(
        "order_shards",
        sa.Column("order_id", sa.String(), primary_key=True),
        sa.Column("shards", sa.String(), nullable=False),
    )
    op.create_table(
        "sku_groups",
        sa.Column("sku", sa.String(), primary_key=True),
        sa.Column("root", sa.String(), nullable=False),
    )
    op.create_table(
        "assembled_orders",
        sa.Column("order_id", sa.String(), primary_key=True),
        sa.Column("company_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("doc", sa.Text(), nullable=False),
    )
    op.create_table(
        "workers",
        sa.Column("worker_id", sa.String(), primary_key=True),
        sa.Column("seen_at", sa.BigInteger(), nullable=False),
        sa.Column("roles", sa.String(), nullable=False, server_default=""),
    )
    op.create_table(
        "pipeline_meta",
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    for table in ("pipeline_meta", "workers", "assembled_orders", "sku_groups", "order_shards",
                  "partials", "handoffs", "routed", "causes"):
        op.drop_table(table)
