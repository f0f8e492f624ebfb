"""Each SKU's last published position (available and backorder quantities).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database made before migrations were used was adopted as 0001 and may already
    # hold every table of the code it was made with.
    if sa.inspect(op.get_bind()).has_table("sku_positions"):
        return
    op.create_table(
        "sku_positions",
        sa.Column("sku", sa.String(), primary_key=True),
        sa.Column("available_qty", sa.BigInteger(), nullable=False),
        sa.Column("backorder_qty", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sku_positions")
