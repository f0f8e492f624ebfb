"""Sequence numbers of appended rows are 64-bit: the outbox, the dead letters and
channel-sync's failures go on numbering past 2**31 on SQLite and PostgreSQL, and a
PostgreSQL state made with 32-bit serials is migrated to 64-bit ones, keeping its rows."""

from __future__ import annotations

import json

from alembic import command
from backorders_platform.database import make_engine
from channel_sync.adapters import tables as ct
from channel_sync.adapters.store import Store as ChannelStore
from recalculator.adapters import tables as t
from recalculator.adapters.migrate import RECALCULATOR
from recalculator.adapters.repository import Repository
from recalculator.kafka.relay import RELAY_SOURCE
from recalculator.publishing import to_json
from recalculator.runtime.embedded import EmbeddedRuntime, Record
from sqlalchemy import func, select, text
from support import created, stock

BEYOND = 2**31 + 10  # past the largest 32-bit integer


async def _number_from(conn, table, seq: int) -> None:
    """A row numbered `seq` (refused by a 32-bit column), after which `table` numbers on from
    there: SQLite's rowid goes on from the largest one, PostgreSQL's sequence is set."""
    row = {c.name: _filler(c) for c in table.columns if not c.nullable and c.name != "seq"}
    await conn.execute(table.insert(), [{**row, "seq": seq}])
    if conn.dialect.name == "postgresql":
        await conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'seq'), {seq})"))


def _filler(column):
    python = column.type.python_type
    return {str: "x", int: 0, bool: False}[python]


async def test_outbox_and_dead_letters_number_past_2_31(database):
    async with EmbeddedRuntime(database.url, schema=database.schema) as runtime:
        async with runtime.db.begin() as conn:
            await _number_from(conn, t.outbox, BEYOND)
            await _number_from(conn, t.dead_letters, BEYOND)
        records = [to_json(stock("sku-1", 1)), to_json(created("o1", [("1", "sku-1", 2)])), "{broken"]
        await runtime.handle_batch([Record("log", n, raw) for n, raw in enumerate(records, 1)])
        repository = runtime.repository
        outbox = await repository.outbox_rows(BEYOND, 100)
        dead = await repository.dead_letter_rows(BEYOND, 100)
        assert [row.seq for row in outbox] == list(range(BEYOND + 1, BEYOND + 1 + len(outbox))) and outbox
        assert [row.seq for row in dead] == [BEYOND + 1]
        # A relay's position past 2**31 is stored and read back.
        assert await repository.save_position(RELAY_SOURCE, outbox[-1].seq) == outbox[-1].seq
        assert await repository.position(RELAY_SOURCE) == outbox[-1].seq
        assert await repository.outbox_rows(outbox[-1].seq, 100) == []


async def test_channel_sync_failures_number_past_2_31(database):
    db = make_engine(database.url, database.schema)
    try:
        await Repository(db, database.schema).create_schema()
        await ChannelStore(db, database.schema).create_schema()
        async with db.begin() as conn:
            await _number_from(conn, ct.failures, BEYOND)
            await conn.execute(ct.failures.insert(), [{
                "channel": "wayfair", "sku": "sku-1", "kind": "rejected", "status": 400, "body": "no",
                "row": json.dumps({"sku": "sku-1"}), "attempts": 1, "batch": 1, "failed_at": "2025-04-30T10:00:00Z",
                "resolved": False,
            }])
        async with db.connect() as conn:
            assert (await conn.execute(select(func.max(ct.failures.c.seq)))).scalar() == BEYOND + 1
    finally:
        await db.dispose()


async def test_a_postgresql_state_with_32_bit_serials_is_migrated(database):
    if database.schema is None:  # SQLite: the rowid was 64-bit from the start
        return
    db = make_engine(database.url, database.schema)
    try:
        async with db.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{database.schema}"'))

            def to_0002(sync) -> None:
                config = RECALCULATOR.alembic_config()
                config.attributes["connection"] = sync
                command.upgrade(config, "0002")

            await conn.run_sync(to_0002)
            await conn.execute(t.outbox.insert(), [
                {"event_id": f"e{n}", "event_type": "BackorderChanged", "subject": "o1", "payload": "{}"}
                for n in range(3)
            ])
            too_far = (await conn.execute(text(
                "SELECT seqmax FROM pg_sequence WHERE seqrelid = pg_get_serial_sequence('outbox', 'seq')::regclass"
            ))).scalar()
            assert too_far == 2**31 - 1  # as it was made
        await Repository(db, database.schema).create_schema()  # 0003: 64-bit
        async with db.begin() as conn:
            for table in ("outbox", "dead_letters"):
                column, sequence, maximum = (await conn.execute(text(
                    "SELECT c.data_type, s.seqtypid::regtype::text, s.seqmax "
                    "FROM information_schema.columns c, pg_sequence s "
                    "WHERE c.table_schema = :schema AND c.table_name = :table AND c.column_name = 'seq' "
                    "AND s.seqrelid = pg_get_serial_sequence(:table, 'seq')::regclass"
                ), {"schema": database.schema, "table": table})).one()
                assert (column, sequence, maximum) == ("bigint", "bigint", 2**63 - 1), table
            assert (await conn.execute(select(t.outbox.c.seq).order_by(t.outbox.c.seq))).scalars().all() == [1, 2, 3]
            await _number_from(conn, t.outbox, BEYOND)
            await conn.execute(t.outbox.insert(), [
                {"event_id": "e-far", "event_type": "BackorderChanged", "subject": "o1", "payload": "{}"}
            ])
            assert (await conn.execute(select(func.max(t.outbox.c.seq)))).scalar() == BEYOND + 1
    finally:
        await db.dispose()
