"""Purchase orders keep the time of the update they hold; receipts keep their PO, time and
lines (records of one PO can arrive out of order: see the projection).

Revision ID: c0002
Revises: c0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0002"
down_revision = "c0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channel_sync_purchase_orders") as batch:
        batch.add_column(sa.Column("updated_at", sa.String()))
    with op.batch_alter_table("channel_sync_receipts") as batch:
        batch.add_column(sa.Column("po_id", sa.String()))
        batch.add_column(sa.Column("at", sa.String()))
        batch.add_column(sa.Column("lines", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("channel_sync_receipts") as batch:
        batch.drop_column("lines")
        batch.drop_column("at")
        batch.drop_column("po_id")
    with op.batch_alter_table("channel_sync_purchase_orders") as batch:
        batch.drop_column("updated_at")
