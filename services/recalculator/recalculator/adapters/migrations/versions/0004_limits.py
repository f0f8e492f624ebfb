"""The contract's limits: order quantities in 64 bits, dead letters always storable.

An order holds up to 1,000 lines of up to 1,000,000,000 units each, so its summed `qty` and
`backorder_qty` no longer fit the 32-bit columns. A dead letter's raw input is escaped when
it held NUL or bytes that are not UTF-8 (`raw_escaped`), and cut when it was large
(`raw_size`: its whole size in bytes).

Revision ID: 0004_limits
Revises: 0003_clock
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_limits"
down_revision = "0003_clock"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database made before migrations were used was adopted as 0001 and may already hold
    # every column of the code it was made with.
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("dead_letters")}
    with op.batch_alter_table("orders") as batch:
        for column in ("backorder_qty", "qty"):
            batch.alter_column(
                column, type_=sa.BigInteger(), existing_type=sa.Integer(), existing_nullable=False
            )
    with op.batch_alter_table("dead_letters") as batch:
        if "raw_escaped" not in present:
            batch.add_column(
                sa.Column("raw_escaped", sa.Boolean(), nullable=False, server_default=sa.false())
            )
        if "raw_size" not in present:
            batch.add_column(sa.Column("raw_size", sa.BigInteger()))


def downgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        batch.drop_column("raw_size")
        batch.drop_column("raw_escaped")
    with op.batch_alter_table("orders") as batch:
        for column in ("backorder_qty", "qty"):
            batch.alter_column(
                column, type_=sa.Integer(), existing_type=sa.BigInteger(), existing_nullable=False
            )
