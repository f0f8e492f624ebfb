"""Operators' tools over the input topics: replay into a fresh schema with a report of the
orders whose state differs from the live one, and rebuild of the live state."""

from __future__ import annotations

import uuid

from backorders_platform.database import make_engine
from backorders_platform.kafka_settings import KafkaSettings
from integration.conftest import _drop_schema, kafka_bootstrap, postgres_url
from integration.test_kafka_worker import create_topics
from recalculator.cli.worker import produce
from recalculator.kafka.replay import rebuild, replay_topics
from recalculator.kafka.worker import RecalculatorWorker
from recalculator.publishing import to_json
from sqlalchemy import text
from support import created, event


async def test_replay_reports_drift_and_rebuild_repairs_it():
    servers, url = kafka_bootstrap(), postgres_url()
    live, replay_a, replay_b = (f"{name}_{uuid.uuid4().hex[:8]}" for name in ("live", "ra", "rb"))
    topics = await create_topics(servers)
    kafka = KafkaSettings(bootstrap_servers=servers)
    # No stock anywhere: every line is backordered whatever the order of the topics.
    log = [created(f"o{n}", [("1", f"sku-{n % 5}", 1 + n % 3)]) for n in range(40)]
    log.append(event("OrderStatusChanged", {"order_id": "o3", "order_status": "Cancelled"}, id="x1"))
    try:
        await produce([to_json(e).encode() for e in log], kafka, topics)
        async with RecalculatorWorker(url, schema=live, kafka=kafka, topics=topics) as worker:
            await worker.catch_up()
        assert await replay_topics(url, replay_a, live, kafka, topics) == []

        # The live state drifts (a bad manual fix in the database): the replay shows it.
        db = make_engine(url, live)
        try:
            async with db.begin() as conn:
                await conn.execute(
                    text("UPDATE orders SET doc = replace(doc, :full, :none) WHERE order_id = 'o7'"),
                    {"full": '"published_status":"Full"', "none": '"published_status":"None"'},
                )
        finally:
            await db.dispose()
        found = await replay_topics(url, replay_b, live, kafka, topics)
        assert [(d.order_id, d.live_status, d.replayed_status) for d in found] == [("o7", "None", "Full")]

        assert await rebuild(url, live, kafka, topics) == len(log)
        await _drop_schema(url, replay_b)
        assert await replay_topics(url, replay_b, live, kafka, topics) == []
    finally:
        for schema in (live, replay_a, replay_b):
            await _drop_schema(url, schema)
