"""The owners of the partitions of partitioned stages: epoch, owner and stored position.

Revision ID: p0001
Revises:
Create Date: 2026-12-05
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
        "partition_owners",
        sa.Column("stage", sa.String(), primary_key=True),
        sa.Column("topic", sa.String(), primary_key=True),
        sa.Column("partition", sa.Integer(), primary_key=True),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("position", sa.BigInteger()),  # the last offset applied; none yet: NULL
    )


def downgrade() -> None:
    op.drop_table("partition_owners")
