"""order_skus, the order search's SKU index: the migration fills it from the orders'
documents, and every batch keeps it to exactly the SKUs of the orders the state holds (lines
added and replaced, orders split and evicted), on each backend."""

from __future__ import annotations

import json
from datetime import timedelta

from backorders_platform.database import make_engine
from backorders_workload import WorkloadShape, generate_days
from recalculator.adapters import tables as t
from recalculator.adapters.repository import Repository
from recalculator.config import RetentionSettings
from recalculator.publishing import to_json
from recalculator.runtime.embedded import EmbeddedRuntime
from sqlalchemy import select
from test_retention import _upgrade_to

DAY = timedelta(days=1)


def _order(order_id: str, skus: list[str]) -> dict:
    lines = [[str(n), sku, 1, 0, False, None, None] for n, sku in enumerate(skus, 1)]
    doc = {"company_id": "c", "order_date": 1, "order_status": "InProcess", "payment_status": "Charged",
           "payment_date": None, "rush": False, "picked": False, "ship_from_warehouse_id": None,
           "channel": None, "customer": None, "published_status": "None", "lines": lines}
    return {"order_id": order_id, "company_id": "c", "order_date": 1, "backorder_status": "None",
            "backorder_qty": 0, "qty": len(skus), "doc": json.dumps(doc)}


async def _pairs(db) -> set[tuple[str, str]]:
    async with db.connect() as conn:
        return {tuple(row) for row in await conn.execute(select(t.order_skus.c.sku, t.order_skus.c.order_id))}


async def test_the_migration_fills_order_skus_from_the_documents(database):
    db = make_engine(database.url, database.schema)
    try:
        await _upgrade_to(db, database.schema, "0007_incoming")
        async with db.begin() as conn:
            await conn.execute(t.orders.insert(), [_order("A", ["X", "Y", "X"]), _order("B", ["Y"]),
                                                   _order("C", [])])
        await Repository(db, database.schema).create_schema()
        assert await _pairs(db) == {("X", "A"), ("Y", "A"), ("Y", "B")}
    finally:
        await db.dispose()


async def test_every_batch_keeps_order_skus_to_the_orders_lines(database):
    retention = RetentionSettings(dedupe_window=DAY, closed_order_retention=DAY)
    days = list(generate_days(3, seed=4, shape=WorkloadShape(orders=150, skus=20)))
    records = [(n, raw["__raw__"] if "__raw__" in raw else to_json(raw))
               for n, raw in enumerate((raw for day in days for raw in day), 1)]
    types = {json.loads(raw).get("type") for _, raw in records if raw.startswith("{") and raw.endswith("}")}
    assert {"ItemAdded", "ItemReplaced", "OrderSplit"} <= types
    async with EmbeddedRuntime(database.url, schema=database.schema, batch_size=97, retention=retention) as runtime:
        await runtime.consume("days", records)
        engine = runtime.engine
        wanted = {(line.sku, order.order_id) for order in engine.orders.values() for line in order.lines.values()}
        assert len(engine.orders) < 3 * 150  # closed orders were evicted
        assert await _pairs(runtime.db) == wanted
