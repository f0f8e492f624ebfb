"""Supply on its way to each SKU (open purchase orders and containers), for the expected
date of each backordered line; lines keep the date last published for them in their
order's document, which needs no change of schema.

Revision ID: 0007_incoming
Revises: 0006_retention
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_incoming"
down_revision = "0006_retention"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database made before migrations were used was adopted as 0001 and may already
    # hold every table of the code it was made with.
    if sa.inspect(op.get_bind()).has_table("incoming"):
        return
    op.create_table(
        "incoming",
        sa.Column("sku", sa.String(), primary_key=True),
        sa.Column("doc", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("incoming")
