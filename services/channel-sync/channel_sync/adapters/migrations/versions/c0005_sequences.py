"""The failures' sequence numbers become 64-bit (BIGINT, and its sequence `AS bigint`) on
PostgreSQL; on SQLite the column is the rowid, 64-bit already.

Revision ID: c0005
Revises: c0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0005"
down_revision = "c0004"
branch_labels = None
depends_on = None


def _retype(to: str, column_type, existing_type) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.alter_column("channel_sync_failures", "seq", type_=column_type, existing_type=existing_type,
                    existing_nullable=False)
    # The sequence's name as PostgreSQL quotes it, schema-qualified.
    sequence = bind.execute(sa.text("SELECT pg_get_serial_sequence('channel_sync_failures', 'seq')")).scalar()
    if sequence:
        op.execute(f"ALTER SEQUENCE {sequence} AS {to}")


def upgrade() -> None:
    _retype("bigint", sa.BigInteger(), sa.Integer())


def downgrade() -> None:
    _retype("integer", sa.Integer(), sa.BigInteger())
