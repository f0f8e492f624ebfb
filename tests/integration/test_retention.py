"""Retention with the state in SQL, on each backend: an existing database migrates (its ids
keep deduplicating, its closed orders get a closing time), and the forgetting engine
survives restarts deciding what `replay` decides."""

from __future__ import annotations

import json
from datetime import timedelta

from alembic import command
from recalculator.adapters import tables as t
from recalculator.adapters.migrate import RECALCULATOR
from recalculator.adapters.repository import Repository, make_engine
from recalculator.cli.replay import replay
from recalculator.config import RetentionSettings
from recalculator.publishing import to_json
from recalculator.runtime.embedded import EmbeddedRuntime
from recalculator.workload import WorkloadShape, generate_days, write_jsonl
from sqlalchemy import select, text

DAY = timedelta(days=1)
LAST_TIME = 1_746_000_000_000_000  # µs: 2025-04-30T08:00:00Z


async def _upgrade_to(db, schema: str | None, revision: str) -> None:
    def upgrade(connection) -> None:
        config = RECALCULATOR.alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with db.begin() as conn:
        if schema:
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await conn.run_sync(upgrade)


def _order_doc(status: str) -> str:
    return json.dumps({
        "company_id": "default", "order_date": LAST_TIME, "order_status": status,
        "payment_status": "Charged", "payment_date": None, "rush": False, "picked": False,
        "ship_from_warehouse_id": None, "channel": None, "customer": None,
        "published_status": "None", "lines": [["1", "X", 1, 0, False, None, None]],
    })


async def test_a_database_of_the_previous_revision_migrates_and_keeps_deduplicating(database):
    url, schema = database
    db = make_engine(url, schema)
    try:
        await _upgrade_to(db, schema, "0002")
        async with db.begin() as conn:
            await conn.execute(text("INSERT INTO processed_events (event_id) VALUES ('e-1'), ('e-2')"))
            await conn.execute(text("INSERT INTO meta (key, value) VALUES ('last_time', :v)"),
                               {"v": str(LAST_TIME)})
            await conn.execute(t.orders.insert(), [
                {"order_id": "shipped", "company_id": "default", "order_date": LAST_TIME,
                 "backorder_status": "None", "backorder_qty": 0, "qty": 1, "doc": _order_doc("Completed")},
                {"order_id": "open", "company_id": "default", "order_date": LAST_TIME,
                 "backorder_status": "None", "backorder_qty": 0, "qty": 1, "doc": _order_doc("InProcess")},
            ])
        await Repository(db, schema).create_schema()
        async with db.connect() as conn:
            processed = (await conn.execute(text(
                "SELECT source, event_id, applied_at FROM processed_events ORDER BY event_id"
            ))).all()
            closed = dict((await conn.execute(select(t.orders.c.order_id, t.orders.c.closed_at))).all())
        assert [tuple(row) for row in processed] == [("", "e-1", LAST_TIME), ("", "e-2", LAST_TIME)]
        assert closed == {"shipped": LAST_TIME, "open": None}
    finally:
        await db.dispose()

    retention = RetentionSettings(dedupe_window=DAY, closed_order_retention=DAY)
    async with EmbeddedRuntime(url, schema=schema, retention=retention) as runtime:
        engine = runtime.engine
        assert engine.orders["shipped"].closed_at == LAST_TIME
        assert engine.orders["shipped"].owing == 1  # a line stored before owes a recalculation
        again = {"specversion": "1.0", "id": "e-1", "source": "/any-producer", "type": "RecalculateBackorders",
                 "time": "2025-04-30T09:00:00Z", "data": {}}
        tally = await runtime.consume("log", [(1, to_json(again))])
        assert tally.duplicates == 1  # an id applied before the migration matches any source
        later = {**again, "id": "e-3", "time": "2025-05-01T09:00:00Z"}
        await runtime.consume("log", [(2, to_json(later))])
        # A day and an hour later: the old ids are forgotten and the shipped order, which
        # that recalculation settled, is evicted; in the database too.
        assert ("", "e-1") not in engine.processed and "shipped" not in engine.orders
        async with runtime.db.connect() as conn:
            left = (await conn.execute(select(t.processed_events.c.event_id))).scalars().all()
            orders = (await conn.execute(select(t.orders.c.order_id))).scalars().all()
        assert left == ["e-3"] and orders == ["open"]


async def test_a_forgetting_runtime_restarted_every_day_decides_what_replay_decides(database, tmp_path):
    url, schema = database
    retention = RetentionSettings(dedupe_window=DAY, closed_order_retention=DAY)
    days = list(generate_days(4, seed=8, shape=WorkloadShape(orders=150, skus=25)))
    log = tmp_path / "days.jsonl"
    write_jsonl([raw for day in days for raw in day], log)
    out, dlq = tmp_path / "out.jsonl", tmp_path / "dlq.jsonl"
    replay(str(log), str(out), str(dlq), retention=retention)

    published, position = [], 0
    for day in days:
        records = []
        for raw in day:
            position += 1
            records.append((position, raw["__raw__"] if "__raw__" in raw else to_json(raw)))
        async with EmbeddedRuntime(url, schema=schema, batch_size=97, retention=retention) as runtime:
            await runtime.consume("days", records,
                                  on_processed=lambda result: published.extend(map(to_json, result.outputs)))
            live = runtime.engine
    assert published == out.read_text().splitlines()
    async with EmbeddedRuntime(url, schema=schema, retention=retention) as reloaded:
        engine = reloaded.engine
        assert set(engine.orders) == set(live.orders)
        assert engine.processed == live.processed
        assert sorted(engine.closing) == sorted(live.closing)
        assert {sku: {(line.order.order_id, line.line_id) for line in lines} for sku, lines in engine.owing.items()} \
            == {sku: {(line.order.order_id, line.line_id) for line in lines} for sku, lines in live.owing.items()}
        assert engine.clock == live.clock
    assert len(live.orders) < 2 * 150 * 1.2  # about two days of orders, not four
