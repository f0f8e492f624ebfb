"""The partitioned recalculator's stages on `PartitionedRunner` (docs/sharding.md, "The
recalculator on consumer groups"). Built so far: the allocation and assembly stages.

Every task partition keeps its state in a schema of its own (`<base>_<stage><partition>`,
with the usual tables), reached in the runner's batch transaction by a `SET LOCAL
search_path` to that schema then the base schema (where the runner's `partition_owners`
lives): the partition's state, its protocol state (JSON in `meta`), its outbox and the
highest sequence applied from each upstream task (in `positions`, as `applied:<source>`)
are written in the transaction that stores the partition's position.

Internal records carry their producer and its sequence in headers (`source`, `seq`); a
record whose sequence is at or below what the partition stored for its source is one a
relay sent again, and is skipped.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer, TopicPartition
from backorder_events.topics import OutputTopics
from backorders_platform import locks, schema_names
from backorders_platform.database import make_engine, upsert
from backorders_platform.kafka_settings import KafkaSettings
from backorders_platform.partitioned import Stage
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from ..adapters import pipeline_tables as pt
from ..adapters import tables as t
from ..adapters.migrate import PIPELINE
from ..adapters.partitioned_codec import (
    allocation_state,
    assembly_state,
    decode_allocation,
    decode_partial_message,
    encode_allocation,
    encode_partial_message,
    load_allocation_state,
    load_assembly_state,
)
from ..adapters.repository import BatchRows, Repository, _chunks, outbox_row
from ..domain.partitioned import AllocationTask, AssemblyTask
from ..domain.sharding import stable_shard
from ..publishing import order_event, output_id, position_event, product_event, rfc3339
from .relay import OutboxRelay, wait_either
from .sharded import assembled_order, assembled_row, migrate_stage, relay_until

SOURCE_HEADER, SEQ_HEADER, TIME_HEADER = "source", "seq", "time"
APPLIED = "applied:"  # positions of upstream tasks: `applied:<source>` → its last sequence


def task_schema(base: str, stage: str, partition: int) -> str:
    return schema_names.checked(f"{base}_{stage}{partition}")


def internal_source(schema: str) -> str:
    """The producer named in the headers of a task partition's internal records: its stage
    and partition (`allocation3`), as the tasks name their sources."""
    return schema.rsplit("_", 1)[1]


async def migrate_task_schemas(url: str, base: str, stage: str, partitions: int) -> None:
    """Every partition's schema of a stage, before any runner claims a partition."""
    for partition in range(partitions):
        schema = task_schema(base, stage, partition)
        await migrate_stage(url, schema)
        db = make_engine(url, schema)
        try:
            await PIPELINE.upgrade(db, schema)  # assembled_orders
        finally:
            await db.dispose()


async def use_schema(conn: AsyncConnection, schema: str, base: str) -> None:
    """The partition's tables first, then the runner's, for the rest of the transaction."""
    path = ", ".join(schema_names.quoted(name) for name in (schema, base))
    await conn.execute(text(f"SET LOCAL search_path TO {path}"))


def headers_of(record) -> dict[str, str]:
    return {name: value.decode() for name, value in (record.headers or ())}


async def applied_sequences(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(select(t.positions.c.source, t.positions.c.position)
                              .where(t.positions.c.source.startswith(APPLIED)))
    return {row.source[len(APPLIED):]: row.position for row in rows}


def applied_rows(applied: dict[str, int]) -> list[dict]:
    return [{"source": APPLIED + source, "position": seq, "stream_time": None}
            for source, seq in sorted(applied.items())]


def publication_id(key: tuple) -> str | None:
    """A part published alone (key (cause, order, allocation partition)) takes the partition
    into its id: the same cause may reach the order from several partitions. None: the
    engine's id, from (cause, order)."""
    if len(key) == 3:
        cause_id, order_id, partition = key
        return output_id("BackorderChanged/part", cause_id, f"{partition}\x1f{order_id}")
    return None


@dataclass(slots=True)
class Wake:
    """What tells a partition's relays that its batch committed: they read their outboxes
    then, and otherwise only every `RELAY_POLL_SECONDS` (a poll per relay every 50 ms cost
    a quarter of a core per idle process on 16 partitions)."""

    outbox: asyncio.Event = field(default_factory=asyncio.Event)
    internal: asyncio.Event = field(default_factory=asyncio.Event)

    def set(self) -> None:
        self.outbox.set()
        self.internal.set()


RELAY_POLL_SECONDS = 2.0


@dataclass(slots=True)
class TaskPartition:
    """A task partition as its runner holds it: the pure task, what it applied from each
    source, and (for a stage that produces internal records) its last sequence."""

    schema: str
    task: object
    applied: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)  # ends its relays
    wake: Wake = field(default_factory=Wake)  # set once a batch committed
    memo: dict = field(default_factory=dict)  # the codec's documents of parked records
    held_places: dict = field(default_factory=dict)  # route: event id → [topic, partition, offset] read at


class TaskStage(Stage):
    """What the partitioned stages share: the partition's schema, the protocol state in
    `meta` under the stage's name, sequences applied per source, records sent again
    skipped, and (with `relays`) an outbox relay and an internal relay per owned partition,
    started when it is claimed and stopped when it is dropped."""

    name = "task"
    produces_internal = False

    def __init__(self, base: str, relays: Relays | None = None) -> None:
        self.base, self.relays = base, relays
        self.applied = 0
        self.skipped = 0

    def new_task(self, partition: int):
        raise NotImplementedError

    async def load_task(self, task, conn: AsyncConnection) -> None:
        """The task's engine state, read on `conn` in the claim's snapshot."""

    async def load(self, partition: TopicPartition | int, conn: AsyncConnection) -> TaskPartition:
        number = partition if isinstance(partition, int) else partition.partition
        schema = task_schema(self.base, self.name, number)
        await use_schema(conn, schema, self.base)
        task = self.new_task(number)
        await self.load_task(task, conn)
        stored = (await conn.execute(select(t.meta.c.value).where(t.meta.c.key == self.name))).scalar()
        if stored:
            self.load_protocol(task, stored)
        sent = (await conn.execute(select(func.max(pt.internal_outbox.c.seq)))).scalar()
        state = TaskPartition(schema, task, await applied_sequences(conn), sent or 0)
        if self.relays is not None:
            self.relays.start(schema, state.stop, state.wake, internal=self.produces_internal)
        return state

    def fresh(self, state: TaskPartition, records: list):
        """The records not applied yet, each with its decoded headers."""
        for record in records:
            headers = headers_of(record)
            if self.is_fresh(state, headers):
                yield record, headers

    def is_fresh(self, state: TaskPartition, headers: dict[str, str]) -> bool:
        """Whether an internal record is new (and, if so, counted as applied)."""
        source, seq = headers[SOURCE_HEADER], int(headers[SEQ_HEADER])
        if seq <= state.applied.get(source, -1):
            self.skipped += 1
            return False
        state.applied[source] = seq
        self.applied += 1
        return True

    def committed(self, partition: TopicPartition, state: TaskPartition) -> None:
        state.wake.set()

    def drop(self, partition: TopicPartition, state: TaskPartition) -> None:
        state.stop.set()

    def load_protocol(self, task, text: str) -> None:
        raise NotImplementedError


class AssemblyStage(TaskStage):
    """Assembly tasks over the partitions of the partials topic (key: order id). Records
    carry a `PartialMessage` and, in headers, their allocation task, its sequence and the
    cause's time (RFC 3339) for the BackorderChanged they lead to."""

    name = "assembly"

    def new_task(self, partition: int) -> AssemblyTask:
        return AssemblyTask()

    async def load_task(self, task: AssemblyTask, conn: AsyncConnection) -> None:
        async for row in await conn.stream(select(pt.assembled_orders)):
            task.assembler.orders[row.order_id] = assembled_order(row)

    def load_protocol(self, task: AssemblyTask, text: str) -> None:
        load_assembly_state(task, text)

    async def apply(self, partition: TopicPartition, state: TaskPartition, records: list,
                    conn: AsyncConnection) -> None:
        await use_schema(conn, state.schema, self.base)
        task = state.task
        outputs, touched = [], set()
        for record, headers in self.fresh(state, records):
            message = decode_partial_message(record.value)
            touched.add(message.partial.order_id)
            for key, change in task.receive(message):
                event = order_event(change, headers[TIME_HEADER])
                event["id"] = publication_id(key) or event["id"]
                outputs.append(event)
        orders = task.assembler.orders
        forgotten = sorted(order_id for order_id in touched if order_id not in orders)
        saved = [assembled_row(order_id, orders[order_id]) for order_id in sorted(touched - set(forgotten))]
        rows = BatchRows(outbox=[outbox_row(event) for event in outputs],
                         meta=[{"key": self.name, "value": assembly_state(task)}],
                         positions=applied_rows(state.applied))

        async def assembled(conn) -> None:
            await upsert(conn, pt.assembled_orders, saved, ["order_id"])
            for chunk in _chunks(forgotten):
                await conn.execute(delete(pt.assembled_orders).where(pt.assembled_orders.c.order_id.in_(chunk)))

        rows.extra.append(assembled)
        await Repository(None).write_rows(conn, rows)


@dataclass(frozen=True, slots=True)
class InternalTopics:
    allocation: str
    partials: str
    allocation_partitions: int
    assembly_partitions: int


class AllocationStage(TaskStage):
    """Allocation tasks over the partitions of the allocation topic. Records carry an
    `Envelope` (from a route task) or a hand-over (from another allocation partition), their
    source and its sequence in headers. Each batch writes the partition's engine state (the
    usual tables of its schema), its protocol state, its outbox (ProductBackorderChanged,
    SkuPositionChanged) and its internal records: hand-overs to the allocation partition
    they are forwarded to, order partials to the assembly partition of their order (a stable
    hash of the order id), numbered by this task's sequence."""

    name = "allocation"
    produces_internal = True

    def __init__(self, base: str, topics: InternalTopics, route_tasks: int, relays: Relays | None = None) -> None:
        super().__init__(base, relays)
        self.topics, self.route_tasks = topics, route_tasks

    def new_task(self, partition: int) -> AllocationTask:
        return AllocationTask(partition, self.route_tasks)

    async def load_task(self, task: AllocationTask, conn: AsyncConnection) -> None:
        await Repository(None).load(task.engine, conn)

    def load_protocol(self, task: AllocationTask, text: str) -> None:
        load_allocation_state(task, text)

    async def apply(self, partition: TopicPartition, state: TaskPartition, records: list,
                    conn: AsyncConnection) -> None:
        await use_schema(conn, state.schema, self.base)
        task, topics = state.task, self.topics
        outputs, internal = [], []

        def send(topic: str, target: int, key: str, payload: bytes, time: str | None) -> None:
            state.sent += 1
            internal.append({"seq": state.sent, "topic": topic, "partition": target, "key": key,
                             "time": time, "payload": payload})

        for record, _ in self.fresh(state, records):
            out = task.receive(decode_allocation(record.value))
            times = {cause: stamp(now) for cause, now in out.times.items()}
            for target, arrival in out.forwards:
                send(topics.allocation, target, arrival.cause_id, encode_allocation(arrival), None)
            for message in out.partials:
                order_id = message.partial.order_id
                send(topics.partials, stable_shard(order_id, topics.assembly_partitions), order_id,
                     encode_partial_message(message), times[message.cause_id])
            outputs.extend(product_event(change, cause, times[cause]) for cause, change in out.products)
            outputs.extend(position_event(change, cause, times[cause]) for cause, change in out.positions)
        rows = Repository.batch_rows(task.engine, task.engine.take_changes(), outputs, [])
        rows.meta.append({"key": self.name, "value": allocation_state(task, state.memo)})
        rows.positions = applied_rows(state.applied)

        async def handed_on(conn) -> None:
            if internal:
                await conn.execute(pt.internal_outbox.insert(), internal)

        rows.extra.append(handed_on)
        await Repository(None).write_rows(conn, rows)


# -- relays -------------------------------------------------------------------------------------


INTERNAL_RELAY = "internal-relay"


class Relays:
    """The relays of each owned task partition: its outbox to the output topics (the
    service's `OutboxRelay`) and its internal outbox to the internal topics, each one
    active per schema (an advisory lock), from the position stored in the schema."""

    def __init__(self, url: str, kafka: KafkaSettings, topics: OutputTopics | None = None) -> None:
        self.url, self.kafka, self.topics = url, kafka, topics
        self.tasks: set[asyncio.Task] = set()
        self.stops: list[asyncio.Event] = []

    def start(self, schema: str, stop: asyncio.Event, wake: Wake, *, internal: bool) -> None:
        self.stops.append(stop)
        works = [self._outbox(schema, stop, wake.outbox)]
        if internal:
            works.append(self._internal(schema, stop, wake.internal))
        for work in works:
            task = asyncio.get_running_loop().create_task(work)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def stop(self) -> None:
        """Stop every relay (its runner has stopped) and wait for them."""
        for stop in self.stops:
            stop.set()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _outbox(self, schema: str, stop: asyncio.Event, wake: asyncio.Event) -> None:
        db = make_engine(self.url, schema)
        relay = OutboxRelay(Repository(db, schema), self.kafka, self.topics)
        try:
            await relay.start()
            await relay_until(relay, stop, wake, RELAY_POLL_SECONDS)
        finally:
            await relay.stop()
            await db.dispose()

    async def _internal(self, schema: str, stop: asyncio.Event, wake: asyncio.Event) -> None:
        db = make_engine(self.url, schema)
        source = internal_source(schema).encode()
        producer = AIOKafkaProducer(**self.kafka.client_options(), acks="all", enable_idempotence=True,
                                    linger_ms=5)
        lock = None
        try:
            await producer.start()
            lock = await locks.hold(db, locks.key(INTERNAL_RELAY, schema), stop=stop)
            repository = Repository(db, schema)
            after = await repository.position(INTERNAL_RELAY) or 0
            while not stop.is_set():
                wake.clear()  # before reading: a batch committed after this read sets it again
                async with db.connect() as conn:
                    rows = (await conn.execute(
                        select(pt.internal_outbox).where(pt.internal_outbox.c.seq > after)
                        .order_by(pt.internal_outbox.c.seq).limit(500)
                    )).all()
                if not rows:
                    await wait_either(stop, wake, RELAY_POLL_SECONDS)
                    continue
                sending = []
                for row in rows:
                    headers = [(SOURCE_HEADER, source), (SEQ_HEADER, str(row.seq).encode())]
                    if row.time is not None:
                        headers.append((TIME_HEADER, row.time.encode()))
                    sending.append(await producer.send(row.topic, row.payload, key=row.key.encode(),
                                                       partition=row.partition, headers=headers))
                await asyncio.gather(*sending)
                after = rows[-1].seq
                await repository.save_position(INTERNAL_RELAY, after)
        except locks.WaitStopped:
            pass
        finally:
            await locks.release(lock)
            await producer.stop()
            await db.dispose()


def stamp(moment_us: int) -> str:
    """A cause's time (µs) as the `time` header."""
    return rfc3339(datetime.fromtimestamp(moment_us / 1_000_000, tz=UTC))
