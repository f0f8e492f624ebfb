"""The recalculator worker on a real Kafka broker and PostgreSQL: a generated day produced
to the input topics (several partitions), consumed with a restart half-way, then a full
recalculation: the final state per order equals `replay` of the same log."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from backorder_events.topics import InputTopics
from backorders_platform.kafka_settings import KafkaSettings
from backorders_workload import WorkloadShape, generate_day
from integration.conftest import (
    _drop_schema,
    day_and_expected,
    kafka_bootstrap,
    postgres_url,
)
from recalculator.cli.worker import produce
from recalculator.kafka.worker import RecalculatorWorker
from recalculator.publishing import to_json
from recalculator.runtime.embedded import EmbeddedRuntime
from support import expected_dates, published


async def create_topics(servers: str, partitions: int | None = None) -> InputTopics:
    """Fresh input topics; with `partitions`, that many for every one of them."""
    suffix = uuid.uuid4().hex[:10]
    topics = InputTopics(orders=f"in.orders.{suffix}", inventory=f"in.inventory.{suffix}",
                         reference=f"in.reference.{suffix}", commands=f"in.commands.{suffix}")
    counts = {topics.orders: 4, topics.inventory: 1, topics.reference: 1, topics.commands: 2}
    # Stock changes of a SKU must keep their order (an adjustment sets, a receipt adds):
    # one partition of inventory unless asked otherwise (they are keyed by SKU anyway).
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.create_topics([
            NewTopic(name, num_partitions=partitions or count, replication_factor=1)
            for name, count in counts.items()
        ])
    finally:
        await admin.close()
    return topics


async def drain(worker: RecalculatorWorker, deadline: float = 90.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while any((await worker.lag()).values()):
        assert loop.time() < end, f"worker did not catch up: {await worker.lag()}"
        await worker.poll_once()


async def test_worker_reaches_the_state_of_replay_across_a_restart():
    servers, url = kafka_bootstrap(), postgres_url()
    schema = f"worker_{uuid.uuid4().hex[:10]}"
    topics = await create_topics(servers)
    kafka = KafkaSettings(bootstrap_servers=servers)
    lines, final, expected = day_and_expected(9, WorkloadShape(orders=500, skus=40))

    try:
        await produce(lines, kafka, topics)
        worker = RecalculatorWorker(url, schema=schema, kafka=kafka, topics=topics, batch_size=150)
        async with worker:
            first_positions = {}
            for _ in range(30):  # part of the log, then a restart
                await worker.poll_once()
                first_positions = await worker.runtime.repository.positions()
                if first_positions:
                    break
        assert first_positions, "nothing was committed before the restart"
        async with RecalculatorWorker(url, schema=schema, kafka=kafka, topics=topics, batch_size=150) as worker:
            await drain(worker)
            await produce([final], kafka, topics)
            await drain(worker)
            assert published(worker.runtime.engine) == published(expected)
            assert expected_dates(worker.runtime.engine) == expected_dates(expected)
            dead = await worker.runtime.repository.dead_letter_records()
        async with EmbeddedRuntime(url, schema=schema) as reloaded:
            assert published(reloaded.engine) == published(expected)
            assert expected_dates(reloaded.engine) == expected_dates(expected)
            assert any(date is not None for date, _ in expected_dates(expected).values())
            statuses = {o.order_id: o.published_status for o in reloaded.engine.orders.values()}
        assert statuses == {o.order_id: o.published_status for o in expected.orders.values()}
        # Refusals carry topic, partition and offset.
        assert dead and all(d.source in topics.all() and d.partition is not None and d.position is not None
                            for d in dead)
    finally:
        await _drop_schema(url, schema)


async def test_the_active_worker_publishes_the_periodic_recalculation_to_the_log():
    servers, url = kafka_bootstrap(), postgres_url()
    schema = f"periodic_{uuid.uuid4().hex[:10]}"
    topics = await create_topics(servers)
    kafka = KafkaSettings(bootstrap_servers=servers)
    try:
        async with RecalculatorWorker(url, schema=schema, kafka=kafka, topics=topics,
                                      recalc_every_seconds=0.5) as worker:
            stop = asyncio.Event()
            asyncio.get_running_loop().call_later(1.8, stop.set)
            await worker.run(stop)
            await drain(worker)
            processed = sorted(e for _, e in worker.runtime.engine.processed if e.startswith("periodic-"))
        # One command per half-second slot, each in the commands topic and applied once.
        assert 3 <= len(processed) <= 5, processed
        from datetime import datetime

        stamps = [datetime.fromisoformat(p.removeprefix("periodic-recalculation-")) for p in processed]
        assert all((stamp.timestamp() * 2).is_integer() for stamp in stamps), stamps  # slot starts
        assert len(set(stamps)) == len(stamps)
    finally:
        await _drop_schema(url, schema)


async def test_a_worker_that_lost_its_lock_cannot_write_once_another_took_over():
    from backorders_platform.database import FencedOut

    servers, url = kafka_bootstrap(), postgres_url()
    schema = f"fence_{uuid.uuid4().hex[:10]}"
    topics = await create_topics(servers)
    kafka = KafkaSettings(bootstrap_servers=servers)
    lines = [to_json(e).encode() for e in generate_day(4, WorkloadShape(orders=80, skus=10, bad_events=0))]
    try:
        await produce(lines[:100], kafka, topics)
        first = RecalculatorWorker(url, schema=schema, kafka=kafka, topics=topics)
        await first.start()
        second = None
        try:
            await drain(first)
            # The first worker's lock goes away unnoticed (as when PostgreSQL restarts).
            await first._release_lock()
            second = await RecalculatorWorker(url, schema=schema, kafka=kafka, topics=topics).start()
            await produce(lines[100:], kafka, topics)
            before = await first.runtime.repository.positions()
            with pytest.raises(FencedOut):
                for _ in range(100):
                    await first.poll_once()
            assert await first.runtime.repository.positions() == before  # it wrote nothing
            await drain(second)  # the new owner goes on
        finally:
            if second is not None:
                await second.stop()
            await first.stop()
    finally:
        await _drop_schema(url, schema)
