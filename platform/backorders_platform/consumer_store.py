"""What the stores of the notifier and channel-sync share: their dead letters, pruning in
chunks, whether the database answers, and how many rows each table holds.

Dead letters are the records a service's intake could not take in (not JSON, refused by the
contract, values the database cannot hold, or failing again and again), with where they were
read and why (`screening`). Each service has its own table
(`notifier_dead_letters`, `channel_sync_dead_letters`) of the same shape, created by its own
migration: `dead_letter_table` declares it in the service's metadata,
`create_dead_letter_table` is the step its migration runs, `dead_letter_row` is what a
refused record becomes, `dead_letters` reads them back. (The recalculator's own dead
letters, with the partition and the escaped raw input, are `tables.dead_letters`.)
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import BigInteger, Column, Float, Index, Integer, MetaData, String, Table, Text, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .screening import REASON_KEPT, Refused, raw_text, storable


def dead_letter_table(name: str, metadata: MetaData) -> Table:
    """The dead-letter table `name` in a service's `metadata`."""
    return Table(
        name,
        metadata,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("source", String, nullable=False),  # topic:partition, an input file, outbox
        Column("position", BigInteger, nullable=False),  # offset, line, seq
        Column("event_id", String),
        Column("event_type", String),
        Column("reason", Text, nullable=False),
        Column("raw", Text, nullable=False),  # UTF-8, errors replaced, cut at 64 KiB
        Column("recorded_at", Float, nullable=False),  # wall clock, seconds since epoch
        Index(f"ix_{name}_recorded", "recorded_at"),
    )


def create_dead_letter_table(name: str) -> None:
    """A migration's step: create the dead-letter table `name` as the notifier's n0002 and
    channel-sync's c0003 do. Migrations that ran must keep building the same table: a later
    change of the table is a new migration of each service, never a change here."""
    from alembic import op

    op.create_table(
        name,
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String()),
        sa.Column("event_type", sa.String()),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.Float(), nullable=False),
    )
    op.create_index(f"ix_{name}_recorded", name, ["recorded_at"])


def dead_letter_row(source: str, position: int, raw: Any, refused: Refused, now: float) -> dict:
    """The row of a record that cannot be taken in, read at `position` of `source`, recorded
    at `now` (wall clock): every text as the database can hold it, the raw record cut."""
    return {
        "source": storable(source, 500), "position": position,
        "event_id": storable(refused.event_id, 500) if refused.event_id else None,
        "event_type": storable(refused.event_type, 200) if refused.event_type else None,
        "reason": storable(refused.reason, REASON_KEPT), "raw": raw_text(raw), "recorded_at": now,
    }


async def dead_letters(db: AsyncEngine, table: Table, limit: int | None = None) -> list:
    """Dead letters, oldest first (the latest `limit` when given)."""
    query = select(table).order_by(table.c.seq.desc())
    if limit:
        query = query.limit(limit)
    async with db.connect() as conn:
        return list(reversed((await conn.execute(query)).all()))


async def delete_chunks(transaction: Callable[[], AbstractAsyncContextManager[AsyncConnection]], table: Table,
                        key, chosen, chunk: int) -> int:
    """Delete the rows `chosen` (a select of their `key`), `chunk` at a time, each chunk in a
    transaction of its own (`transaction()`: the service's, locked or fenced as its writes
    are); returns how many were deleted."""
    deleted = 0
    while True:
        async with transaction() as conn:
            keys = [row[0] for row in await conn.execute(chosen.order_by(key).limit(chunk))]
            if keys:
                await conn.execute(table.delete().where(key.in_(keys)))
        deleted += len(keys)
        if len(keys) < chunk:
            return deleted


async def reachable(db: AsyncEngine) -> bool:
    """Whether the database answers (an outage is waited out, not counted as a failure)."""
    try:
        async with db.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - not answering is the answer
        return False


async def counts_by_table(db: AsyncEngine, metadata: MetaData) -> dict[str, int]:
    """Rows per table of a service's `metadata` (for operators and the retention tests)."""
    async with db.connect() as conn:
        return {table.name: (await conn.execute(select(func.count()).select_from(table))).scalar_one()
                for table in metadata.sorted_tables}
