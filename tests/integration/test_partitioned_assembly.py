"""The partitioned recalculator's assembly stage (recalculator.kafka.partitioned) on a real
broker and PostgreSQL: the order partials of a generated day, as the pure allocation tasks
send them (the equivalence test's simulation), produced to a partials topic with their
source and sequence, part of them sent a second time as a relay resending its tail would;
one runner, then a second joining the group. Each assembly partition ends with the state
the pure `AssemblyTask` reaches over the same records, every publication is in its outbox
once, and the records sent twice were skipped."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from backorders_platform.database import make_engine
from backorders_platform.kafka_settings import KafkaSettings
from backorders_platform.partitioned import PartitionedRunner, migrate
from integration.conftest import _drop_schema, kafka_bootstrap, postgres_url
from partitioned_simulation import Simulation, as_route_tasks_see_it, generated_day
from partitioned_support import GROUP_OPTIONS
from recalculator.adapters import pipeline_tables as pt
from recalculator.adapters import tables as t
from recalculator.adapters.partitioned_codec import encode_partial_message
from recalculator.domain.model import to_us
from recalculator.domain.partitioned import AssemblyTask
from recalculator.kafka.partitioned import (
    SEQ_HEADER,
    SOURCE_HEADER,
    TIME_HEADER,
    AssemblyStage,
    migrate_task_schemas,
    publication_id,
    stamp,
    task_schema,
)
from recalculator.kafka.sharded import assembled_order
from recalculator.kafka.topic_admin import delete_topics
from recalculator.publishing import output_id
from sqlalchemy import select, text
from support import parsed

ASSEMBLIES = 3
FINAL = {"specversion": "1.0", "id": "final-recalculation", "source": "/tests",
         "type": "RecalculateBackorders", "time": "2031-01-01T00:00:00Z", "data": {}}


class Capturing(Simulation):
    """The simulation, with every partial sent to an assembly partition kept in the order
    sent, numbered per allocation task."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.partials: list[tuple[int, str, int, object]] = []  # (assembly, source, seq, message)
        self.sequences: Counter = Counter()
        outer = self

        class Channel(list):
            def __init__(self, task: int) -> None:
                super().__init__()
                self.task = task

            def append(self, message) -> None:
                source = f"allocation{message.partition}"
                outer.partials.append((self.task, source, outer.sequences[source], message))
                outer.sequences[source] += 1
                super().append(message)

            def popleft(self):
                return self.pop(0)

        self.to_assembly = _Channels(Channel)


class _Channels(dict):
    def __init__(self, channel) -> None:
        super().__init__()
        self.channel = channel

    def __missing__(self, key):
        value = self[key] = self.channel(key[1])
        return value


def day() -> tuple[list, dict[str, int]]:
    events = generated_day(5, 200)
    seen = as_route_tasks_see_it(events) + as_route_tasks_see_it([parsed(FINAL)])
    times = {event.id: to_us(event.time) for event, _ in seen}
    return seen, times


def expected_assembly(partials) -> tuple[list[AssemblyTask], list[str]]:
    """The pure assembly tasks over the records each partition receives, in order."""
    tasks, ids = [AssemblyTask() for _ in range(ASSEMBLIES)], []
    for task, _, _, message in partials:
        for key, change in tasks[task].receive(message):
            ids.append(publication_id(key) or output_id("BackorderChanged", change.cause_id, change.order_id))
    return tasks, ids


class Setup:
    def __init__(self) -> None:
        self.url, self.servers = postgres_url(), kafka_bootstrap()
        self.base = f"test_{uuid.uuid4().hex[:12]}"
        self.topic = f"partials.{uuid.uuid4().hex[:10]}"
        self.group = f"group-{uuid.uuid4().hex[:10]}"
        self.db = make_engine(self.url, self.base)
        self.ends: dict[int, int] = {}  # assembly partition → offset of its last record

    async def produce(self, partials, times) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.servers, acks="all", enable_idempotence=True)
        await producer.start()
        try:
            for task, source, seq, message in partials:
                headers = [(SOURCE_HEADER, source.encode()), (SEQ_HEADER, str(seq).encode()),
                           (TIME_HEADER, stamp(times[message.cause_id]).encode())]
                sent = await producer.send_and_wait(
                    self.topic, encode_partial_message(message), key=message.partial.order_id.encode(),
                    partition=task, headers=headers)
                self.ends[task] = sent.offset
        finally:
            await producer.stop()

    async def positions(self) -> dict[int, int]:
        async with self.db.connect() as conn:
            rows = await conn.execute(text("SELECT partition, position FROM partition_owners WHERE topic = :t"),
                                      {"t": self.topic})
            return {row.partition: row.position for row in rows if row.position is not None}

    async def wait_for(self, condition, what: str, deadline: float = 120.0) -> None:
        end = time.monotonic() + deadline
        while not await condition():
            if time.monotonic() > end:
                pytest.fail(f"not reached within {deadline:.0f} s: {what}; positions {await self.positions()}")
            await asyncio.sleep(0.2)

    async def stored(self, partition: int) -> tuple[dict, list[str]]:
        db = make_engine(self.url, task_schema(self.base, "assembly", partition))
        try:
            async with db.connect() as conn:
                orders = {row.order_id: assembled_order(row)
                          for row in await conn.execute(select(pt.assembled_orders))}
                ids = [row.event_id for row in await conn.execute(select(t.outbox.c.event_id))]
        finally:
            await db.dispose()
        return orders, ids


@pytest.fixture
async def setup():
    setup = Setup()
    admin = AIOKafkaAdminClient(bootstrap_servers=setup.servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(setup.topic, num_partitions=ASSEMBLIES, replication_factor=1)])
    finally:
        await admin.close()
    async with setup.db.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{setup.base}"'))
    await migrate(setup.db)
    await migrate_task_schemas(setup.url, setup.base, "assembly", ASSEMBLIES)
    try:
        yield setup
    finally:
        await setup.db.dispose()
        for schema in [setup.base] + [task_schema(setup.base, "assembly", p) for p in range(ASSEMBLIES)]:
            await _drop_schema(setup.url, schema)
        await delete_topics(KafkaSettings(bootstrap_servers=setup.servers), [setup.topic])


def member(setup: Setup, stage: AssemblyStage) -> PartitionedRunner:
    return PartitionedRunner(stage, setup.db, KafkaSettings(bootstrap_servers=setup.servers), [setup.topic],
                             setup.group, batch_size=100, consumer_options=GROUP_OPTIONS)


async def test_assembly_partitions_on_the_group_equal_the_pure_tasks(setup):
    seen, times = day()
    simulation = Capturing(3, 6, ASSEMBLIES, random.Random(2))
    simulation.feed(seen)
    simulation.run()
    partials = simulation.partials
    assert simulation.idle() and len(partials) > 500
    tasks, ids = expected_assembly(partials)
    # A relay resending its tail: some records of one source sent again, same sequences.
    resent = [p for p in partials[len(partials) // 3:] if p[1] == "allocation1"][:40]
    half = len(partials) // 2

    first_stage, second_stage = AssemblyStage(setup.base), AssemblyStage(setup.base)
    first, first_stop = member(setup, first_stage), asyncio.Event()
    second, second_stop = member(setup, second_stage), asyncio.Event()
    await setup.produce(partials[:half], times)
    first_task = asyncio.create_task(first.run(first_stop))
    second_task = None
    try:
        async def some_applied():
            return bool(await setup.positions())
        await setup.wait_for(some_applied, "a first batch applied")
        second_task = asyncio.create_task(second.run(second_stop))

        async def shared():
            return bool(first.owned) and bool(second.owned)
        await setup.wait_for(shared, "the partitions shared by both members")
        await setup.produce(partials[half:] + resent, times)

        async def all_applied():
            return await setup.positions() == setup.ends
        await setup.wait_for(all_applied, "every record applied")
    finally:
        first_stop.set()
        second_stop.set()
        await asyncio.wait_for(first_task, 60)
        if second_task is not None:
            await asyncio.wait_for(second_task, 60)

    assert first_stage.skipped + second_stage.skipped >= len(resent)
    stored_ids = []
    for partition in range(ASSEMBLIES):
        orders, outbox = await setup.stored(partition)
        expected = tasks[partition].assembler.orders
        assert sorted(orders) == sorted(expected)
        for order_id, order in orders.items():
            want = expected[order_id]
            assert (order.status, order.published, order.by_shard) == (want.status, want.published, want.by_shard)
        stored_ids.extend(outbox)
    assert not [key for key, count in Counter(stored_ids).items() if count > 1]
    assert sorted(stored_ids) == sorted(ids)
