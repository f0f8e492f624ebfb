"""The servers that `make test` starts (deploy/test-env.sh) answer as the Kafka runtime
needs: a Kafka broker that creates partitioned topics and keeps per-key order, and a
PostgreSQL 15 reachable through SQLAlchemy's async engine.

These tests fail, never skip, when the servers' variables are missing: run them through
`make test` (or `deploy/test-env.sh pytest ...`)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import defaultdict

import pytest

pytestmark = pytest.mark.integration

MESSAGES = 20
KEYS = 5
PARTITIONS = 3


def server_env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        pytest.fail(
            f"{name} is not set: run these tests through `make test` "
            "(deploy/test-env.sh starts the local servers and exports it)",
            pytrace=False,
        )
    return value


async def test_kafka_keeps_every_message_and_per_key_order():
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    bootstrap = server_env("KAFKA_BOOTSTRAP_SERVERS")
    topic = f"backorders-smoke-{uuid.uuid4().hex}"

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
        described = await admin.describe_topics([topic])
        assert len(described[0]["partitions"]) == PARTITIONS

        sent = [(f"sku-{i % KEYS}", f"{i}") for i in range(MESSAGES)]
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
        await producer.start()
        try:
            partition_of: dict[str, set[int]] = defaultdict(set)
            for key, value in sent:
                meta = await asyncio.wait_for(
                    producer.send_and_wait(topic, key=key.encode(), value=value.encode()), 30
                )
                partition_of[key].add(meta.partition)
        finally:
            await producer.stop()
        # The default partitioner sends every message of a key to one partition.
        assert all(len(parts) == 1 for parts in partition_of.values()), partition_of

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        received = []
        try:
            async def drain():
                while len(received) < MESSAGES:
                    batches = await consumer.getmany(timeout_ms=1_000)
                    for tp, records in batches.items():
                        received.extend((tp.partition, r.offset, r.key.decode(), r.value.decode()) for r in records)

            await asyncio.wait_for(drain(), 60)
        finally:
            await consumer.stop()
    finally:
        try:
            await admin.delete_topics([topic])
        finally:
            await admin.close()

    assert sorted((k, v) for _, _, k, v in received) == sorted(sent)
    assert {p for p, _, _, _ in received} <= set(range(PARTITIONS))
    # Per key, in offset order within its partition, the values come back as they were sent.
    by_key: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for partition, offset, key, value in received:
        by_key[key].append((partition, offset, value))
    for key, entries in by_key.items():
        assert len({p for p, _, _ in entries}) == 1, (key, entries)
        in_log_order = [value for _, _, value in sorted(entries)]
        assert in_log_order == [v for k, v in sent if k == key], key


async def test_postgresql_15_through_the_async_engine():
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    url = server_env("DATABASE_URL")
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            version = (await conn.execute(text("SHOW server_version"))).scalar_one()
            assert version.startswith("15"), version
            await conn.execute(text("CREATE TEMPORARY TABLE smoke (id integer PRIMARY KEY, sku text NOT NULL)"))
            await conn.execute(
                text("INSERT INTO smoke (id, sku) VALUES (:id, :sku)"),
                [{"id": 1, "sku": "A-1"}, {"id": 2, "sku": "B-2"}, {"id": 3, "sku": "C-3"}],
            )
            rows = (await conn.execute(text("SELECT id, sku FROM smoke ORDER BY id"))).all()
            assert [tuple(row) for row in rows] == [(1, "A-1"), (2, "B-2"), (3, "C-3")]
            await conn.rollback()
    finally:
        await engine.dispose()
