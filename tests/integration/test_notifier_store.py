"""The notifier's store on PostgreSQL: intake batches of one schema are serialised by an
advisory lock, and that lock belongs to the schema, so notifiers of other schemas in the
same database are not held up by it."""

from __future__ import annotations

import asyncio
import json
import uuid

from backorders_platform.database import make_engine
from backorders_platform.migrations import drop_schema
from integration.conftest import postgres_url
from notifier.adapters.store import Store
from notifier.config import from_mapping
from notifier.service import NotifierService
from sqlalchemy import text


def _order(order_id: str) -> str:
    return json.dumps({
        "specversion": "1.0", "id": f"oc-{order_id}", "source": "/oms", "type": "OrderCreated",
        "time": "2025-04-30T10:00:00Z",
        "data": {"order_id": order_id, "order_date": "2025-04-30T10:00:00Z", "company_id": "c1",
                 "payment_status": "Charged", "customer": {"email": "ann@example.com"},
                 "lines": [{"line_id": "1", "sku": "cat-hammock", "qty": 1}]},
    })


async def test_the_intake_lock_is_per_schema(tmp_path):
    url = postgres_url()
    schemas = [f"test_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    config = from_mapping({}, "test", base=tmp_path)
    engines = [make_engine(url, schema) for schema in schemas]
    try:
        services = []
        for engine, schema in zip(engines, schemas, strict=True):
            store = Store(engine, schema)
            await store.create_schema()
            services.append(NotifierService(store, config))
        first, second = services
        assert first.store.intake_lock != second.store.intake_lock
        async with engines[0].begin() as holder:
            # Another process of the first schema is inside an intake batch.
            await holder.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": first.store.intake_lock})
            # The second schema's notifier goes on...
            await asyncio.wait_for(second.take_in({"orders:0": [(1, _order("o1"))]}), 5)
            # ...while the first schema's waits for the batch in progress.
            waiting = asyncio.create_task(first.take_in({"orders:0": [(1, _order("o1"))]}))
            done, _ = await asyncio.wait([waiting], timeout=1)
            assert not done
        await asyncio.wait_for(waiting, 5)
        assert [await s.store.position("orders:0") for s in services] == [1, 1]
    finally:
        for engine in engines:
            await engine.dispose()
        for schema in schemas:
            await drop_schema(url, schema)
