"""The outbox relay against a real Kafka broker: every committed event reaches its topic,
keyed as documented, in commit order per key, and nothing is sent twice by a relay that
was not interrupted."""

from __future__ import annotations

import json
import uuid

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from backorder_events.topics import OutputTopics
from backorders_platform.kafka_settings import KafkaSettings
from backorders_workload import WorkloadShape, generate_day
from integration.conftest import consume_all, kafka_bootstrap
from recalculator.kafka.relay import RELAY_SOURCE, OutboxRelay
from recalculator.publishing import to_json
from recalculator.runtime.embedded import EmbeddedRuntime


async def fresh_topics(servers: str) -> OutputTopics:
    suffix = uuid.uuid4().hex[:10]
    topics = OutputTopics(
        backorder_changed=f"test.bc.{suffix}",
        product_backorder_changed=f"test.pbc.{suffix}",
        sku_position_changed=f"test.spc.{suffix}",
        dead_letters=f"test.dlq.{suffix}",
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.create_topics([
            NewTopic(topics.backorder_changed, num_partitions=3, replication_factor=1),
            NewTopic(topics.product_backorder_changed, num_partitions=3, replication_factor=1),
            NewTopic(topics.sku_position_changed, num_partitions=3, replication_factor=1),
            NewTopic(topics.dead_letters, num_partitions=1, replication_factor=1),
        ])
    finally:
        await admin.close()
    return topics


async def test_relay_publishes_the_outbox_keyed_and_in_order(database):
    servers = kafka_bootstrap()
    topics = await fresh_topics(servers)
    events = generate_day(3, WorkloadShape(orders=300, skus=30))
    records = [(n, e.get("__raw__") or to_json(e)) for n, e in enumerate(events, 1)]
    async with EmbeddedRuntime(database.url, schema=database.schema) as runtime:
        await runtime.consume("day", records)
        outbox = await runtime.repository.outbox_rows(0, 1_000_000)
        dead = await runtime.repository.dead_letter_records()
        async with OutboxRelay(
            runtime.repository, KafkaSettings(bootstrap_servers=servers), topics, batch_size=97
        ) as relay:
            assert await relay.relay_all() == len(outbox) + len(dead)
            assert await relay.relay_all() == 0  # drained: nothing is sent twice
        assert await runtime.repository.position(RELAY_SOURCE) == outbox[-1].seq

    # The generated day holds bad inputs: each is on the dead-letter topic with its reason.
    letters = await consume_all(servers, [topics.dead_letters], len(dead))
    assert len(letters) == len(dead) > 0
    assert [json.loads(r.value) for r in letters] == [d.model_dump() for d in dead]
    assert [r.key.decode() for r in letters] == [f"day:None:{d.position}" for d in dead]

    outputs = [topics.backorder_changed, topics.product_backorder_changed, topics.sku_position_changed]
    received = await consume_all(servers, outputs, len(outbox))
    assert len(received) == len(outbox) > 100
    by_id = {dict(r.headers)["ce_id"].decode(): r for r in received}
    assert set(by_id) == {row.event_id for row in outbox}
    for row in outbox:
        record = by_id[row.event_id]
        assert record.value.decode() == row.payload
        assert record.key.decode() == row.subject == json.loads(row.payload)["subject"]
        assert record.topic == topics.for_type(row.event_type)
    # Per key, the topic holds the events in the order they were decided.
    for topic in outputs:
        seen: dict[bytes, list[str]] = {}
        for record in sorted((r for r in received if r.topic == topic), key=lambda r: (r.partition, r.offset)):
            seen.setdefault(record.key, []).append(dict(record.headers)["ce_id"].decode())
        committed: dict[bytes, list[str]] = {}
        for row in outbox:
            if topics.for_type(row.event_type) == topic:
                committed.setdefault(row.subject.encode(), []).append(row.event_id)
        assert seen == committed


async def test_a_relay_told_of_a_commit_reads_at_once_and_otherwise_waits_its_poll(database):
    """With `wake`, a drained relay reads its outbox again when woken, not only when its
    (here long) poll comes round: what a partitioned stage commits is relayed at once,
    without every partition's relay polling its table."""
    import asyncio

    servers = kafka_bootstrap()
    topics = await fresh_topics(servers)
    events = generate_day(5, WorkloadShape(orders=20, skus=5))
    records = [(n, e.get("__raw__") or to_json(e)) for n, e in enumerate(events, 1)]
    async with EmbeddedRuntime(database.url, schema=database.schema) as runtime:
        stop, wake = asyncio.Event(), asyncio.Event()
        async with OutboxRelay(runtime.repository, KafkaSettings(bootstrap_servers=servers), topics) as relay:
            running = asyncio.create_task(relay.run(stop, idle_seconds=60, wake=wake))
            await asyncio.sleep(1.0)  # drained (nothing written yet): waiting
            await runtime.consume("day", records)
            await asyncio.sleep(1.0)
            assert await runtime.repository.position(RELAY_SOURCE) is None  # not woken: not read
            wake.set()
            for _ in range(100):
                await asyncio.sleep(0.05)
                if await runtime.repository.position(RELAY_SOURCE):
                    break
            outbox = await runtime.repository.outbox_rows(0, 1_000_000)
            assert outbox and await runtime.repository.position(RELAY_SOURCE) == outbox[-1].seq
            stop.set()
            await asyncio.wait_for(running, 5)
