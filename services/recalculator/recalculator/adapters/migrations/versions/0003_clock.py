"""The effective time each input partition had reached, kept with its position, so that a
restarted worker merges the partitions in the same order (ordering.py).

Revision ID: 0003_clock
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_clock"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database made before migrations were used was adopted as 0001 and may already
    # hold every table of the code it was made with.
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("positions")}
    if "stream_time" in columns:
        return
    with op.batch_alter_table("positions") as table:
        table.add_column(sa.Column("stream_time", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("positions") as table:
        table.drop_column("stream_time")
