"""The contract's limits: order quantities in 64 bits.

An order holds up to 1,000 lines of up to 1,000,000,000 units each, so its summed `qty` and
`backorder_qty` no longer fit the 32-bit columns.

Revision ID: 0003_limits
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_limits"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        for column in ("backorder_qty", "qty"):
            batch.alter_column(
                column, type_=sa.BigInteger(), existing_type=sa.Integer(), existing_nullable=False
            )


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        for column in ("backorder_qty", "qty"):
            batch.alter_column(
                column, type_=sa.Integer(), existing_type=sa.BigInteger(), existing_nullable=False
            )
