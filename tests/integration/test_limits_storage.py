"""The contract's limits against real storage, on SQLite and PostgreSQL: every poison input
becomes a dead letter the database takes (NUL and bytes that are not UTF-8 escaped, a huge
input cut), the inputs after it are applied, and the largest values the limits allow are
stored and read back exactly (docs/behaviour.md, "Limits")."""

from __future__ import annotations

import json

from alembic import command
from alembic.script import ScriptDirectory
from backorder_events.limits import MAX_DEAD_LETTER_RAW_BYTES, MAX_LINE_QTY, MAX_ORDER_LINES, MAX_STOCK_QTY
from backorders_platform.database import make_engine
from recalculator.adapters import migrate
from recalculator.adapters import tables as t
from recalculator.adapters.repository import Repository
from recalculator.runtime.embedded import EmbeddedRuntime
from sqlalchemy import select, text
from support import created, order_lines, poison_inputs, poison_setup, stock


def poisoned_records():
    records = [(1, poison_setup())]
    poisons = {}
    for n, (what, raw, reason) in enumerate(poison_inputs()):
        records.append((len(records) + 1, raw))
        poisons[len(records)] = (what, raw, reason)
        records.append((len(records) + 1, json.dumps(created(f"after-{n}", [("1", "SKU-A", 1)])).encode()))
    return records, poisons


async def test_every_poison_is_stored_as_a_dead_letter_and_the_next_input_applied(database):
    url, schema = database
    records, poisons = poisoned_records()
    # A small batch size: poisons land in several transactions, between good inputs.
    async with EmbeddedRuntime(url, batch_size=4, schema=schema) as runtime:
        tally = await runtime.consume("log", records)
        assert (tally.applied, tally.dead_lettered) == (len(records) - len(poisons), len(poisons))
        dead = await runtime.repository.dead_letter_records()
    assert sorted(d.position for d in dead) == sorted(poisons)
    for letter in dead:
        what, raw, reason = poisons[letter.position]
        assert reason in letter.reason, (what, letter.reason)
        if len(raw) > MAX_DEAD_LETTER_RAW_BYTES:
            assert letter.raw_size == len(raw) and raw.startswith(letter.original()), what
        else:
            assert letter.original() == raw and letter.raw_size is None, what
    async with EmbeddedRuntime(url, schema=schema) as reloaded:
        for n in range(len(poisons)):
            assert order_lines(reloaded.engine, f"after-{n}") == {"1": 1}
        assert reloaded.engine.stock["SKU-P"]["W1"] == MAX_STOCK_QTY


async def test_the_largest_orders_the_limits_allow_are_stored_exactly(database):
    """An order's summed qty and backorder go past 32 bits; 250 of them in one batch also go
    through PostgreSQL's COPY upsert."""
    url, schema = database
    lines = [(str(n), f"SKU-{n % 7}", MAX_LINE_QTY) for n in range(MAX_ORDER_LINES)]
    events = [stock("SKU-0", MAX_STOCK_QTY)]
    events += [created(f"big-{n}", lines if n == 0 else lines[:3]) for n in range(250)]
    records = [(n, json.dumps(e).encode()) for n, e in enumerate(events, 1)]
    async with EmbeddedRuntime(url, batch_size=1000, schema=schema) as runtime:
        tally = await runtime.consume("log", records)
        assert tally.applied == len(records)
        async with runtime.db.connect() as conn:
            rows = {r.order_id: r for r in await conn.execute(select(t.orders))}
        live = runtime.engine
    assert rows["big-0"].qty == MAX_ORDER_LINES * MAX_LINE_QTY > 2**31
    assert rows["big-1"].qty == 3 * MAX_LINE_QTY
    assert rows["big-1"].backorder_qty == sum(line.published for line in live.orders["big-1"].lines.values())
    async with EmbeddedRuntime(url, schema=schema) as reloaded:
        assert order_lines(reloaded.engine, "big-0") == order_lines(live, "big-0")
        nonzero = {k: v for k, v in live.totals.items() if v}
        assert {k: v for k, v in reloaded.engine.totals.items() if v} == nonzero
        assert max(nonzero.values()) > 2**31


async def test_a_database_at_0002_is_migrated_with_its_rows(database):
    url, schema = database
    db = make_engine(url, schema)

    def to_0002(connection):
        config = migrate.RECALCULATOR.alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")

    try:
        async with db.begin() as conn:
            if schema:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await conn.run_sync(to_0002)
            await conn.execute(text(
                "INSERT INTO orders (order_id, company_id, order_date, backorder_status, backorder_qty, qty, doc) "
                "VALUES ('o1', 'default', 0, 'Full', 5, 5, '{}')"))
            await conn.execute(text(
                "INSERT INTO dead_letters (source, position, reason, raw) VALUES ('log', 3, 'bad', '{oops')"))
        repository = Repository(db, schema)
        await repository.create_schema()
        [letter] = await repository.dead_letter_records()
        assert (letter.raw, letter.raw_escaped, letter.raw_size) == ("{oops", False, None)
        async with db.begin() as conn:
            await conn.execute(t.orders.update().values(qty=3 * MAX_LINE_QTY))
            assert (await conn.execute(select(t.orders.c.qty, t.orders.c.backorder_qty))).one() == (
                3 * MAX_LINE_QTY, 5)
            revision = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        assert revision == ScriptDirectory.from_config(migrate.RECALCULATOR.alembic_config()).get_current_head()
    finally:
        await db.dispose()
