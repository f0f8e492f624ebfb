"""The outbox's and the dead letters' sequence numbers become 64-bit.

A 32-bit serial stops at 2,147,483,647 rows appended over the life of the state: at a few
thousand outbox events per second that is within weeks. On PostgreSQL the columns become
BIGINT and their sequences `AS bigint` (which also raises their maximum); the column change
rewrites each table under an exclusive lock, so run it while the outbox is short. On SQLite
the columns are the rowid, which is 64-bit already: nothing to do.

Revision ID: 0005_sequences
Revises: 0004_limits
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_sequences"
down_revision = "0004_limits"
branch_labels = None
depends_on = None

TABLES = ("outbox", "dead_letters")


def _retype(to: str, column_type, existing_type) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table in TABLES:
        op.alter_column(table, "seq", type_=column_type, existing_type=existing_type,
                        existing_nullable=False)
        # The sequence's name as PostgreSQL quotes it, schema-qualified.
        sequence = bind.execute(sa.text("SELECT pg_get_serial_sequence(:t, 'seq')"), {"t": table}).scalar()
        if sequence:
            op.execute(f"ALTER SEQUENCE {sequence} AS {to}")


def upgrade() -> None:
    _retype("bigint", sa.BigInteger(), sa.Integer())


def downgrade() -> None:
    _retype("integer", sa.Integer(), sa.BigInteger())
