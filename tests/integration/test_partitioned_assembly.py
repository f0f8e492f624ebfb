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
from backorder_events.topics import OutputTopics
from backorders_platform.database import make_engine
from backorders_platform.kafka_settings import KafkaSettings
from backorders_platform.partitioned import PartitionedRunner, migrate
from integration.conftest import _drop_schema, kafka_bootstrap, postgres_url
from partitioned_simulation import Simulation, as_route_tasks_see_it, assert_equal, engine_run
from partitioned_support import GROUP_OPTIONS
from recalculator.adapters import pipeline_tables as pt
from recalculator.adapters import tables as t
from recalculator.adapters.partitioned_codec import encode_allocation, encode_partial_message
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
from support import generated_events, parsed

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
    events = generated_events(5, 200)
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
        return await stored_assembly(self.url, self.base, partition)


async def stored_assembly(url: str, base: str, partition: int) -> tuple[dict, list[str]]:
    """An assembly partition's orders and the ids in its outbox."""
    db = make_engine(url, task_schema(base, "assembly", partition))
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


# -- allocation and assembly together ---------------------------------------------------------

ALLOCATIONS = 6


class RouteCapture(Simulation):
    """The simulation, with every envelope a route task sends kept in the order sent: the
    route side is pure and never hears from the allocation tasks, so what it sends does not
    depend on the interleaving."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.envelopes: list[tuple[int, object]] = []

    def _routed(self, p: int, event, routed) -> None:
        self.envelopes.extend(routed.envelopes)
        # the settled inputs' envelopes are kept by the recursive calls
        super()._routed(p, event, routed)


class Stored:
    """What the allocation and assembly schemas hold, as the equivalence test's
    `assert_equal` reads a simulation."""

    def __init__(self, lines: dict, assembled: dict, dates: dict) -> None:
        self._lines, self._assembled, self._dates = lines, assembled, dates

    def line_backorders(self):
        return self._lines

    def line_dates(self):
        return self._dates

    def assembled(self):
        return self._assembled


async def stored_pipeline(url: str, base: str) -> Stored:
    from recalculator.adapters.repository import Repository
    from recalculator.domain.shard_engine import ShardEngine

    lines, assembled, dates = {}, {}, {}
    for partition in range(ALLOCATIONS):
        schema = task_schema(base, "allocation", partition)
        db = make_engine(url, schema)
        try:
            engine = ShardEngine()
            await Repository(db, schema).load(engine)
        finally:
            await db.dispose()
        for order_id, order in engine.orders.items():
            for line_id, line in order.lines.items():
                lines[(order_id, line_id)] = line.published
                dates[(order_id, line_id)] = engine.expected_date(line)
    for partition in range(ASSEMBLIES):
        schema = task_schema(base, "assembly", partition)
        db = make_engine(url, schema)
        try:
            async with db.connect() as conn:
                for row in await conn.execute(select(pt.assembled_orders)):
                    order = assembled_order(row)
                    assembled[row.order_id] = (order.status, {k: v for k, v in order.published.items() if v})
        finally:
            await db.dispose()
    return Stored(lines, assembled, dates)


async def unsettled(url: str, base: str, servers: str, topics: list[tuple[str, int]]) -> str:
    """What is not applied or relayed yet ("" once every record of the topics is applied
    and every internal outbox relayed)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=servers, group_id=None)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for topic, count in topics for p in range(count)]
        ends = await consumer.end_offsets(parts)
    finally:
        await consumer.stop()
    db = make_engine(url, base)
    try:
        async with db.connect() as conn:
            stored = {(row.topic, row.partition): row.position for row in await conn.execute(
                text("SELECT topic, partition, position FROM partition_owners"))}
            for partition in range(ALLOCATIONS):
                schema = task_schema(base, "allocation", partition)
                sent = (await conn.execute(text(f'SELECT max(seq) FROM "{schema}".internal_outbox'))).scalar()
                relayed = (await conn.execute(text(
                    f"SELECT position FROM \"{schema}\".positions WHERE source = 'internal-relay'"))).scalar()
                if (sent or 0) != (relayed or 0):
                    return f"{schema}: {relayed} of {sent} internal records relayed"
    finally:
        await db.dispose()
    behind = {(tp.topic, tp.partition): (stored.get((tp.topic, tp.partition)), end - 1)
              for tp, end in ends.items() if end and stored.get((tp.topic, tp.partition)) != end - 1}
    return f"(applied, last) {behind}" if behind else ""


async def test_allocation_and_assembly_stages_on_the_group_equal_the_engine():
    from recalculator.kafka.partitioned import AllocationStage, InternalTopics, Relays

    url, servers = postgres_url(), kafka_bootstrap()
    base = f"test_{uuid.uuid4().hex[:12]}"
    suffix = uuid.uuid4().hex[:10]
    topics = InternalTopics(f"allocation.{suffix}", f"partials.{suffix}", ALLOCATIONS, ASSEMBLIES)
    kafka = KafkaSettings(bootstrap_servers=servers)
    seen, _ = day()
    engine, _ = engine_run(seen)
    simulation = RouteCapture(3, ALLOCATIONS, ASSEMBLIES, random.Random(4))
    simulation.feed(seen)
    simulation.run()
    assert simulation.idle()

    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topics.allocation, num_partitions=ALLOCATIONS, replication_factor=1),
                                   NewTopic(topics.partials, num_partitions=ASSEMBLIES, replication_factor=1)])
    finally:
        await admin.close()
    db = make_engine(url, base)
    async with db.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{base}"'))
    await migrate(db)
    await migrate_task_schemas(url, base, "allocation", ALLOCATIONS)
    await migrate_task_schemas(url, base, "assembly", ASSEMBLIES)
    output = OutputTopics(**{name: f"{value}.{suffix}" for name, value in OutputTopics().model_dump().items()})
    members, tasks = [], []

    def join() -> None:
        relays = Relays(url, kafka, output)
        for stage, topic in ((AllocationStage(base, topics, 3, relays), topics.allocation),
                             (AssemblyStage(base, relays), topics.partials)):
            runner = PartitionedRunner(stage, db, kafka, [topic], f"{stage.name}-{suffix}", batch_size=100,
                                       consumer_options=GROUP_OPTIONS)
            stop = asyncio.Event()
            members.append((runner, stop, relays))
            tasks.append(asyncio.create_task(runner.run(stop)))

    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", enable_idempotence=True)
    await producer.start()
    sequences = Counter()
    half = len(simulation.envelopes) // 2
    try:
        async def produce(envelopes) -> None:
            for partition, envelope in envelopes:
                headers = [(SOURCE_HEADER, envelope.source.encode()),
                           (SEQ_HEADER, str(sequences[envelope.source]).encode())]
                sequences[envelope.source] += 1
                await producer.send(topics.allocation, encode_allocation(envelope), key=envelope.cause_id.encode(),
                                    partition=partition, headers=headers)
            await producer.flush()

        await produce(simulation.envelopes[:half])
        join()
        await asyncio.sleep(3)
        join()  # a second member of each stage
        await produce(simulation.envelopes[half:])
        end = time.monotonic() + 150
        internal = [(topics.allocation, ALLOCATIONS), (topics.partials, ASSEMBLIES)]
        quiet = 0
        while quiet < 2:  # twice in a row: no record in flight between the two reads
            waiting = await unsettled(url, base, servers, internal)
            quiet = 0 if waiting else quiet + 1
            assert time.monotonic() < end, f"the pipeline did not settle: {waiting}"
            await asyncio.sleep(0.5)
        assert all(runner.owned for runner, _, _ in members)  # every member held partitions
        stored = await stored_pipeline(url, base)
        assert_equal(stored, engine, every_line=False)
        ids = []
        for partition in range(ASSEMBLIES):
            _, outbox = await stored_assembly(url, base, partition)
            ids.extend(outbox)
        assert ids and not [key for key, count in Counter(ids).items() if count > 1]
    finally:
        await producer.stop()
        for _, stop, _ in members:
            stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _, _, relays in members:
            await relays.stop()
        await db.dispose()
        schemas = [base] + [task_schema(base, "allocation", p) for p in range(ALLOCATIONS)]
        schemas += [task_schema(base, "assembly", p) for p in range(ASSEMBLIES)]
        for schema in schemas:
            await _drop_schema(url, schema)
        await delete_topics(kafka, [topics.allocation, topics.partials] + list(output.model_dump().values()))
