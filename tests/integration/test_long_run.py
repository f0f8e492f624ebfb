"""Ten trading days through the embedded runtime, restarted every day, on each backend: with
retention, every table and every map the engine keeps in memory stops growing once the
windows are full, and what was published equals `replay` of the same log."""

from __future__ import annotations

from datetime import timedelta

from backorders_workload import WorkloadShape, generate_days, write_jsonl
from recalculator.adapters import tables as t
from recalculator.adapters.repository import DEAD_LETTER_RELAY_SOURCE, OUTBOX_RELAY_SOURCE
from recalculator.cli.replay import replay
from recalculator.config import RetentionSettings
from recalculator.domain.engine import Engine
from recalculator.processing import process
from recalculator.publishing import to_json
from recalculator.runtime.embedded import EmbeddedRuntime
from sqlalchemy import func, select

DAYS = 10
SHAPE = WorkloadShape(orders=200, skus=30)
RETENTION = RetentionSettings(
    dedupe_window=timedelta(days=2), closed_order_retention=timedelta(days=2),
    outbox_retention=timedelta(days=1), dead_letter_retention=timedelta(days=1),
)


async def table_sizes(runtime) -> dict[str, int]:
    async with runtime.db.connect() as conn:
        return {
            table.name: (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            for table in t.metadata.sorted_tables
        }


def engine_sizes(engine: Engine) -> dict[str, int]:
    def lines(by_sku) -> int:
        return sum(len(values) for values in by_sku.values())

    return {
        "orders": len(engine.orders), "processed": len(engine.processed),
        "remembered": len(engine._remembered), "closing": len(engine.closing),  # noqa: SLF001
        "expired": len(engine.expired), "owing": lines(engine.owing),
        "lines_by_sku": lines(engine.lines_by_sku), "dirty": lines(engine.dirty),
        "held_orders": len(engine.held_orders), "totals": len(engine.totals),
        "positions": len(engine.positions), "stock": lines(engine.stock),
    }


async def relay_everything(runtime) -> None:
    """What the outbox relay does after sending all there is."""
    async with runtime.db.connect() as conn:
        for source, table in ((OUTBOX_RELAY_SOURCE, t.outbox), (DEAD_LETTER_RELAY_SOURCE, t.dead_letters)):
            last = (await conn.execute(select(func.max(table.c.seq)))).scalar()
            if last is not None:
                await runtime.repository.save_position(source, last)


def assert_flat(history: list[dict[str, int]], what: str) -> None:
    """From the fifth day on (the windows are two days), every measure stays where it is."""
    for name in history[0]:
        settled = [day[name] for day in history[4:]]
        assert max(settled) - min(settled) <= max(2, 0.05 * max(settled)), (
            f"{what} {name} grows: " + " ".join(str(day[name]) for day in history)
        )


async def test_ten_days_stay_flat_and_equal_replay(database, tmp_path):
    url, schema = database
    days = list(generate_days(DAYS, seed=21, shape=SHAPE))
    log = tmp_path / "days.jsonl"
    write_jsonl([raw for day in days for raw in day], log)
    out, dlq = tmp_path / "out.jsonl", tmp_path / "dlq.jsonl"
    replay(str(log), str(out), str(dlq), retention=RETENTION)

    tables, memory, published, position = [], [], [], 0
    for day in days:
        records = []
        for raw in day:
            position += 1
            records.append((position, raw["__raw__"] if "__raw__" in raw else to_json(raw)))
        async with EmbeddedRuntime(url, schema=schema, batch_size=200, retention=RETENTION) as runtime:
            await runtime.consume("days", records,
                                  on_processed=lambda result: published.extend(map(to_json, result.outputs)))
            await relay_everything(runtime)
            await runtime.prune()
            tables.append(await table_sizes(runtime))
            memory.append(engine_sizes(runtime.engine))
            live = runtime.engine

    assert_flat(tables, "table")
    assert_flat(memory, "engine")
    created = sum(1 for day in days for raw in day if raw.get("type") == "OrderCreated")
    assert tables[-1]["orders"] < 0.4 * created  # without retention: every order ever created
    assert tables[-1]["outbox"] < 0.3 * len(published)

    # What was published, restarts and forgetting included, is what replay publishes.
    assert published == out.read_text().splitlines()
    expected = Engine(**RETENTION.engine_options())
    for number, raw in enumerate(log.read_bytes().splitlines(), 1):
        process(expected, raw, str(log), number)
    assert {o: (order.published_status, {lid: line.published for lid, line in order.lines.items()})
            for o, order in live.orders.items()} == {
        o: (order.published_status, {lid: line.published for lid, line in order.lines.items()})
        for o, order in expected.orders.items()
    }
    assert live.processed == expected.processed
    assert {k: v for k, v in live.totals.items() if v} == {k: v for k, v in expected.totals.items() if v}
    # An engine loaded from the database keeps a total (maybe 0) for every SKU with lines,
    # one that never restarted for every SKU whose total ever changed.
    assert {**engine_sizes(live), "totals": 0} == {**engine_sizes(expected), "totals": 0}
