"""Slip notices: each notification's scenario, and the expected day each order's last
email gave.

Revision ID: n0004
Revises: n0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "n0004"
down_revision = "n0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifier_notifications") as batch:
        batch.add_column(sa.Column("scenario", sa.String(), nullable=False,
                                   server_default="EmailCustomerForBackOrder"))
    with op.batch_alter_table("notifier_orders") as batch:
        batch.add_column(sa.Column("emailed_day", sa.String()))


def downgrade() -> None:
    with op.batch_alter_table("notifier_orders") as batch:
        batch.drop_column("emailed_day")
    with op.batch_alter_table("notifier_notifications") as batch:
        batch.drop_column("scenario")
