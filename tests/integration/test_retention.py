"""Retention with the state in SQL, on each backend: an existing database migrates (its ids
keep deduplicating, its closed orders get a closing time), the forgetting engine survives
restarts deciding what `replay` decides, and the outbox and dead letters are pruned once
relayed and old."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from alembic import command
from recalculator.adapters import tables as t
from recalculator.adapters.migrate import RECALCULATOR
from recalculator.adapters.repository import DEAD_LETTER_RELAY_SOURCE, OUTBOX_RELAY_SOURCE, Pruned, Repository
from backorders_platform.database import make_engine
from recalculator.cli.replay import replay
from recalculator.config import RetentionSettings
from recalculator.publishing import to_json
from recalculator.runtime.embedded import EmbeddedRuntime
from backorders_workload import WorkloadShape, generate_days, write_jsonl
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
            await conn.execute(text(
                "INSERT INTO outbox (event_id, event_type, subject, payload) VALUES ('o-1', 'T', 'S', '{}')"
            ))
            await conn.execute(text("INSERT INTO dead_letters (source, reason, raw) VALUES ('log', 'bad', 'x')"))
        await Repository(db, schema).create_schema()
        async with db.connect() as conn:
            processed = (await conn.execute(text(
                "SELECT source, event_id, applied_at FROM processed_events ORDER BY event_id"
            ))).all()
            closed = dict((await conn.execute(select(t.orders.c.order_id, t.orders.c.closed_at))).all())
            recorded = [(await conn.execute(select(table.c.recorded_at))).scalar_one()
                        for table in (t.outbox, t.dead_letters)]
        assert [tuple(row) for row in processed] == [("", "e-1", LAST_TIME), ("", "e-2", LAST_TIME)]
        assert closed == {"shipped": LAST_TIME, "open": None}
        assert recorded == [LAST_TIME, LAST_TIME]  # pruned a window after the migration, once relayed
        async with db.connect() as conn:
            clock = (await conn.execute(text("SELECT value FROM meta WHERE key = 'clock'"))).scalar()
        assert clock == str(LAST_TIME)
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
        later = {"specversion": "1.0", "id": "e-3", "source": "/purchasing", "type": "PurchaseOrderUpdated",
                 "time": "2025-05-01T09:00:00Z", "data": {"po_id": "P", "lines": [{"sku": "X", "qty_ordered": 1}]}}
        recalculation = {**again, "id": "e-4", "time": "2025-05-01T09:00:00Z"}
        await runtime.consume("log", [(2, to_json(later)), (3, to_json(recalculation))])
        # A day and an hour later: the old ids are forgotten and the shipped order, which
        # the recalculation settled, is evicted; in the database too.
        assert ("", "e-1") not in engine.processed and "shipped" not in engine.orders
        async with runtime.db.connect() as conn:
            left = (await conn.execute(select(t.processed_events.c.event_id))).scalars().all()
            orders = (await conn.execute(select(t.orders.c.order_id))).scalars().all()
        assert sorted(left) == ["e-3", "e-4"] and orders == ["open"]


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


async def _counts(runtime) -> tuple[int, int]:
    async with runtime.db.connect() as conn:
        return tuple([
            (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
            for table in ("outbox", "dead_letters")
        ])


async def _last_seq(runtime, table) -> int:
    async with runtime.db.connect() as conn:
        return (await conn.execute(text(f"SELECT max(seq) FROM {table}"))).scalar_one()


async def test_only_what_the_relay_sent_and_is_older_than_its_window_is_pruned(database):
    url, schema = database
    retention = RetentionSettings(outbox_retention=DAY, dead_letter_retention=2 * DAY)
    days = list(generate_days(4, seed=4, shape=WorkloadShape(orders=100, skus=20)))
    position = 0

    async def feed(runtime, day) -> None:
        nonlocal position
        records = []
        for raw in day:
            position += 1
            records.append((position, raw["__raw__"] if "__raw__" in raw else to_json(raw)))
        await runtime.consume("days", records)

    async with EmbeddedRuntime(url, schema=schema, retention=retention) as runtime:
        repository = runtime.repository
        await feed(runtime, days[0])
        first_day = await _counts(runtime)
        assert first_day[0] > 100 and first_day[1] > 0
        # Nothing relayed yet: nothing goes, however old.
        await feed(runtime, days[1])
        await feed(runtime, days[2])
        assert await runtime.prune() == Pruned()
        # The relay sent half of the first day's outbox and all its dead letters.
        sent = first_day[0] // 2
        await repository.save_position(OUTBOX_RELAY_SOURCE, sent)
        await repository.save_position(DEAD_LETTER_RELAY_SOURCE, first_day[1])
        before = await _counts(runtime)
        pruned = await repository.prune(retention.outbox_retention, retention.dead_letter_retention, chunk=7)
        # Two days later: the relayed half of the first day's outbox is older than a day; its
        # dead letters are not older than two days yet (recorded at its end, 20:00).
        assert (pruned.outbox, pruned.dead_letters) == (sent, 0)
        assert await _counts(runtime) == (before[0] - sent, before[1])
        assert [row.seq for row in await repository.outbox_rows(0, 1)] == [sent + 1]  # the relay goes on
        await feed(runtime, days[3])
        pruned = await runtime.prune()
        assert (pruned.outbox, pruned.dead_letters) == (0, first_day[1])
        # What the relay has sent and is younger than the window stays.
        await repository.save_position(OUTBOX_RELAY_SOURCE, await _last_seq(runtime, "outbox"))
        await repository.save_position(DEAD_LETTER_RELAY_SOURCE, await _last_seq(runtime, "dead_letters"))
        await runtime.prune()
        async with runtime.db.connect() as conn:
            oldest = (await conn.execute(text("SELECT min(recorded_at) FROM outbox"))).scalar_one()
        assert runtime.engine.clock - oldest <= DAY // timedelta(microseconds=1)
        assert (await _counts(runtime))[0] > 0


async def test_the_newest_row_is_never_pruned_so_numbers_are_never_reused(database):
    url, schema = database
    retention = RetentionSettings(outbox_retention=DAY, dead_letter_retention=DAY)
    days = list(generate_days(2, seed=4, shape=WorkloadShape(orders=60, skus=12)))
    clock_only = {"specversion": "1.0", "id": "later", "source": "/ops", "type": "PurchaseOrderUpdated",
                  "time": "2025-05-09T00:00:00Z", "data": {"po_id": "P", "lines": [{"sku": "Z", "qty_ordered": 1}]}}
    records = [(n, raw["__raw__"] if "__raw__" in raw else to_json(raw))
               for n, raw in enumerate((raw for day in days for raw in day), 1)]
    async with EmbeddedRuntime(url, schema=schema, retention=retention) as runtime:
        await runtime.consume("days", records)
        await runtime.consume("days", [(len(records) + 1, to_json(clock_only))])  # a week later, no output
        last = await _last_seq(runtime, "outbox")
        await runtime.repository.save_position(OUTBOX_RELAY_SOURCE, last)
        await runtime.repository.save_position(DEAD_LETTER_RELAY_SOURCE, await _last_seq(runtime, "dead_letters"))
        await runtime.prune()
        assert await _counts(runtime) == (1, 1)  # everything sent and old, but the newest
        sku = next(raw["data"]["sku"] for raw in days[0] if raw.get("type") == "ProductUpserted")
        more = {**clock_only, "id": "more", "type": "InventoryAdjusted",
                "data": {"sku": sku, "warehouse_id": "WH-MAIN", "delta": 5, "recalculate": True}}
        await runtime.consume("days", [(len(records) + 2, to_json(more))])
        assert [row.seq for row in await runtime.repository.outbox_rows(last, 10)][0] == last + 1


async def test_the_relay_prunes_what_it_sent(database):
    from integration.test_outbox_relay import fresh_topics
    from integration.conftest import kafka_bootstrap
    from recalculator.kafka.relay import OutboxRelay
    from backorders_platform.kafka_settings import KafkaSettings

    url, schema = database
    servers = kafka_bootstrap()
    topics = await fresh_topics(servers)
    retention = RetentionSettings(outbox_retention=DAY, dead_letter_retention=DAY, prune_every_seconds=0.1)
    days = list(generate_days(3, seed=6, shape=WorkloadShape(orders=80, skus=15)))
    records = [(n, raw["__raw__"] if "__raw__" in raw else to_json(raw))
               for n, raw in enumerate((raw for day in days for raw in day), 1)]
    async with EmbeddedRuntime(url, schema=schema, retention=retention, batch_size=100) as runtime:
        await runtime.consume("days", records)  # rows are stamped with their batch's clock
        total = await _counts(runtime)
        async with OutboxRelay(runtime.repository, KafkaSettings(bootstrap_servers=servers), topics,
                               retention=retention) as relay:
            stop = asyncio.Event()
            asyncio.get_running_loop().call_later(2.0, stop.set)
            await relay.run(stop, idle_seconds=0.05)
        left = await _counts(runtime)
        # Everything was sent; what is more than a day older than the last event went.
        assert 0 < left[0] < total[0] and left[1] < total[1]
        async with runtime.db.connect() as conn:
            oldest = (await conn.execute(text("SELECT min(recorded_at) FROM outbox"))).scalar_one()
        assert runtime.engine.clock - oldest <= DAY // timedelta(microseconds=1)
