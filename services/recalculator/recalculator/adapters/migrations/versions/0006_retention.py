"""Retention: processed ids by (source, id) with the business time they were applied at;
when each order closed; when each outbox row and dead letter was recorded.

Rows written before this revision are given the state's business clock as it stood (the
time of the last applied event, `meta.last_time`, which becomes `meta.clock`): ids applied
before keep deduplicating
(under source "", which matches an event of any source) for a whole dedupe window from
there, closed orders are kept for a whole retention from there, and outbox rows and dead
letters are pruned a whole window after it.

Revision ID: 0006_retention
Revises: 0005_sequences
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_retention"
down_revision = "0005_sequences"
branch_labels = None
depends_on = None

CLOSED = ("Completed", "Cancelled", "Void")


def _clock(bind) -> int:
    value = bind.execute(sa.text("SELECT value FROM meta WHERE key = 'last_time'")).scalar()
    return int(value) if value is not None else 0


def _columns(bind, table: str) -> set[str]:
    return {column["name"] for column in sa.inspect(bind).get_columns(table)}


def upgrade() -> None:
    bind = op.get_bind()
    # A database made before migrations were used was adopted as 0001 and may already hold
    # every table of the code it was made with: each step looks before it changes.
    clock = _clock(bind)
    has_clock = bind.execute(sa.text("SELECT count(*) FROM meta WHERE key = 'clock'")).scalar()
    if clock and not has_clock:
        op.execute(sa.text("INSERT INTO meta (key, value) VALUES ('clock', :clock)").bindparams(clock=str(clock)))
    if "source" not in _columns(bind, "processed_events"):
        op.create_table(
            "processed_events_0003",
            sa.Column("source", sa.String(), nullable=False),
            sa.Column("event_id", sa.String(), nullable=False),
            sa.Column("applied_at", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("source", "event_id", name="processed_events_0003_pkey"),
        )
        op.execute(sa.text(
            "INSERT INTO processed_events_0003 (source, event_id, applied_at) "
            "SELECT '', event_id, :clock FROM processed_events"
        ).bindparams(clock=clock))
        op.drop_table("processed_events")
        op.rename_table("processed_events_0003", "processed_events")
        if bind.dialect.name == "postgresql":
            op.execute("ALTER TABLE processed_events RENAME CONSTRAINT processed_events_0003_pkey "
                       "TO processed_events_pkey")
        op.create_index("ix_processed_events_applied_at", "processed_events", ["applied_at"])

    if "closed_at" not in _columns(bind, "orders"):
        op.add_column("orders", sa.Column("closed_at", sa.BigInteger()))
        if bind.dialect.name == "postgresql":
            status = "(CAST(doc AS json) ->> 'order_status')"
        else:
            status = "json_extract(doc, '$.order_status')"
        op.execute(sa.text(
            f"UPDATE orders SET closed_at = :clock WHERE {status} IN "
            f"({', '.join(repr(name) for name in CLOSED)})"
        ).bindparams(clock=clock))

    for table in ("outbox", "dead_letters"):
        if "recorded_at" not in _columns(bind, table):
            op.add_column(table, sa.Column("recorded_at", sa.BigInteger()))
            op.execute(sa.text(f"UPDATE {table} SET recorded_at = :clock").bindparams(clock=clock))
            op.create_index(f"ix_{table}_recorded_at", table, ["recorded_at"])


def downgrade() -> None:
    op.execute("DELETE FROM meta WHERE key = 'clock'")
    for table in ("dead_letters", "outbox"):
        op.drop_index(f"ix_{table}_recorded_at", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("recorded_at")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("closed_at")
    op.create_table("processed_events_0002", sa.Column("event_id", sa.String(), primary_key=True))
    op.execute("INSERT INTO processed_events_0002 (event_id) SELECT DISTINCT event_id FROM processed_events")
    op.drop_table("processed_events")
    op.rename_table("processed_events_0002", "processed_events")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE processed_events RENAME CONSTRAINT processed_events_0002_pkey "
                   "TO processed_events_pkey")
