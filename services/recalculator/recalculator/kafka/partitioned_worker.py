"""One worker process of the partitioned recalculator (`backorders worker recalculator
--partitioned`, docs/sharding.md): a member of each stage's consumer group (sequencer,
route, allocation, assembly), with the relays of the task partitions it owns. Any number
of such processes share the work; Kafka's group protocol decides who owns what.

Before its runners start, the worker checks the topics: the orders, inventory and
order-commands topics must have the same partition count (route task *p* holds partition
*p* of each), the commands and global topics one partition, and every count must be the
one the state was built with (stored in the sequencer's schema on the first start). A
worker that finds other counts refuses to start and names them: keys would land on tasks
that do not hold their state (`backorders rebuild` against the new counts is the way).
"""

from __future__ import annotations

import asyncio
import json

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from backorder_events.topics import InputTopics, OutputTopics
from backorders_platform import logs, schema_names
from backorders_platform.database import make_engine, upsert
from backorders_platform.kafka_settings import KafkaSettings
from backorders_platform.partitioned import PartitionedRunner, migrate
from sqlalchemy import select, text
from sqlalchemy.exc import ProgrammingError

from ..adapters import tables as t
from .partitioned import AllocationStage, AssemblyStage, InternalTopics, Relays, migrate_task_schemas, task_schema
from .partitioned_route import HOLD_WAIT_US, PartitionedTopics, RouteStage, SequencerStage, TopicCache

log = logs.get("recalculator.partitioned")

LAYOUT_KEY = "layout"
# Members' liveness: a member killed is out of the group after the session timeout.
GROUP_OPTIONS = {"session_timeout_ms": 10_000, "heartbeat_interval_ms": 2_000, "max_poll_interval_ms": 120_000}


class LayoutChanged(RuntimeError):
    """The topics' partition counts are not what the worker needs or what the state was
    built with."""


def internal_topic(base: str, name: str) -> str:
    return f"backorders.{base}.{name}"


def layout_of(topics: PartitionedTopics) -> dict:
    return {"route": topics.route_partitions, "allocation": topics.allocation_partitions,
            "assembly": topics.assembly_partitions}


class PartitionedWorker:
    def __init__(self, url: str, base: str = "backorders", *, kafka: KafkaSettings | None = None,
                 inputs: InputTopics | None = None, outputs: OutputTopics | None = None,
                 allocation_partitions: int = 6, assembly_partitions: int = 6, batch_size: int = 500,
                 hold_wait: int | None = HOLD_WAIT_US, consumer_options: dict | None = None) -> None:
        if not url.startswith("postgresql"):
            raise ValueError("the partitioned recalculator keeps its state in PostgreSQL")
        self.url, self.base = url, schema_names.checked(base)
        self.kafka = kafka or KafkaSettings()
        self.inputs, self.outputs = inputs or InputTopics(), outputs or OutputTopics()
        self.allocation_partitions, self.assembly_partitions = allocation_partitions, assembly_partitions
        self.batch_size, self.hold_wait = batch_size, hold_wait
        self.consumer_options = {**GROUP_OPTIONS, **(consumer_options or {})}
        self.runners: dict[str, PartitionedRunner] = {}
        self.topics: PartitionedTopics | None = None

    # -- the layout -------------------------------------------------------------------------

    async def prepare(self) -> PartitionedTopics:
        """Check (and create) the topics, check the stored layout, create every schema."""
        inputs, base = self.inputs, self.base
        admin = AIOKafkaAdminClient(**self.kafka.client_options(), request_timeout_ms=30_000)
        await admin.start()
        try:
            names = [inputs.orders, inputs.inventory, inputs.commands, inputs.reference]
            for _ in range(50):  # topics just created may take a moment to be listed
                counts = await _partition_counts(admin, names)
                missing = [name for name, count in counts.items() if count is None]
                if not missing:
                    break
                await asyncio.sleep(0.2)
            if missing:
                raise LayoutChanged(f"input topics missing: {', '.join(missing)}")
            route = counts[inputs.orders]
            if counts[inputs.inventory] != route:
                raise LayoutChanged(f"{inputs.orders} has {route} partitions and {inputs.inventory} "
                                    f"{counts[inputs.inventory]}: route tasks need them equal")
            if counts[inputs.commands] != 1:
                raise LayoutChanged(f"{inputs.commands} has {counts[inputs.commands]} partitions: it needs one")
            topics = PartitionedTopics(
                orders=inputs.orders, inventory=inputs.inventory, reference=inputs.reference,
                commands=inputs.commands, order_commands=internal_topic(base, "order-commands"),
                global_=internal_topic(base, "global"), allocation=internal_topic(base, "allocation"),
                partials=internal_topic(base, "partials"), route_partitions=route,
                allocation_partitions=self.allocation_partitions, assembly_partitions=self.assembly_partitions,
            )
            # The stored counts first: a worker started with other counts is told to rebuild.
            await self._check_layout(topics)
            wanted = {topics.order_commands: route, topics.global_: 1,
                      topics.allocation: topics.allocation_partitions, topics.partials: topics.assembly_partitions}
            await _create_topics(admin, wanted)
            found = await _partition_counts(admin, list(wanted))
            wrong = [f"{name} has {found[name]} partitions, not {count}"
                     for name, count in wanted.items() if found[name] != count]
            if wrong:
                raise LayoutChanged("; ".join(wrong))
        finally:
            await admin.close()
        await self._migrate(topics)
        self.topics = topics
        return topics

    async def _check_layout(self, topics: PartitionedTopics) -> None:
        db = make_engine(self.url)
        try:
            async with db.begin() as conn:
                # Workers starting together: IF NOT EXISTS alone still races in PostgreSQL.
                await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"),
                                   {"name": f"partitioned-schema:{self.base}"})
                await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema_names.quoted(self.base)}"))
        finally:
            await db.dispose()
        await migrate_task_schemas(self.url, self.base, "sequencer", 1)
        layout = json.dumps(layout_of(topics), sort_keys=True)
        db = make_engine(self.url, task_schema(self.base, "sequencer", 0))
        try:
            async with db.begin() as conn:
                stored = (await conn.execute(select(t.meta.c.value).where(t.meta.c.key == LAYOUT_KEY))).scalar()
                if stored is None:
                    await upsert(conn, t.meta, [{"key": LAYOUT_KEY, "value": layout}], ["key"])
                elif stored != layout:
                    raise LayoutChanged(f"the state was built with partition counts {stored}, the topics "
                                        f"now give {layout}: rebuild the state for the new counts")
        finally:
            await db.dispose()

    async def _migrate(self, topics: PartitionedTopics) -> None:
        await migrate_task_schemas(self.url, self.base, "route", topics.route_partitions)
        await migrate_task_schemas(self.url, self.base, "allocation", topics.allocation_partitions)
        await migrate_task_schemas(self.url, self.base, "assembly", topics.assembly_partitions)

    # -- running ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        topics = self.topics or await self.prepare()
        db = make_engine(self.url, self.base)
        await migrate(db)
        relays = Relays(self.url, self.kafka, self.outputs)
        reference, global_log = TopicCache(self.kafka, topics.reference), TopicCache(self.kafka, topics.global_)
        reference.start()
        global_log.start()
        internal = InternalTopics(topics.allocation, topics.partials, topics.allocation_partitions,
                                  topics.assembly_partitions)
        stages = {
            "sequencer": (SequencerStage(self.base, topics, reference, relays), [topics.commands]),
            "route": (RouteStage(self.base, topics, global_log, relays, hold_wait=self.hold_wait),
                      [topics.orders, topics.inventory, topics.order_commands]),
            "allocation": (AllocationStage(self.base, internal, topics.route_partitions, relays),
                           [topics.allocation]),
            "assembly": (AssemblyStage(self.base, relays), [topics.partials]),
        }
        self.runners = {
            name: PartitionedRunner(stage, db, self.kafka, stage_topics, f"{self.base}.{name}",
                                    batch_size=self.batch_size, consumer_options=self.consumer_options)
            for name, (stage, stage_topics) in stages.items()
        }
        try:
            await asyncio.gather(*(runner.run(stop) for runner in self.runners.values()))
        finally:
            await relays.stop()
            await reference.stop()
            await global_log.stop()
            await db.dispose()


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int | None]:
    """Each topic's partition count, None for a topic that does not exist. Only existing
    topics are described: describing one that does not exist would have a broker that
    creates topics on demand create it with its default count."""
    existing = set(await admin.list_topics())
    counts: dict[str, int | None] = {name: None for name in names}
    present = [name for name in names if name in existing]
    if present:
        for topic in await admin.describe_topics(present):
            if topic.get("error_code", 0) == 0 and topic.get("partitions"):
                counts[topic["topic"]] = len(topic["partitions"])
    return counts


async def _create_topics(admin: AIOKafkaAdminClient, wanted: dict[str, int]) -> None:
    found = await _partition_counts(admin, list(wanted))
    new = [NewTopic(name, num_partitions=count, replication_factor=1)
           for name, count in wanted.items() if found[name] is None]
    if not new:
        return
    try:
        await admin.create_topics(new)
    except TopicAlreadyExistsError:
        pass  # another worker created them meanwhile
    for _ in range(100):  # until the metadata shows them
        if all(count is not None for count in (await _partition_counts(admin, list(wanted))).values()):
            return
        await asyncio.sleep(0.1)


def schemas_of(base: str, route: int, allocation: int, assembly: int) -> list[str]:
    """Every task partition's schema of a layout."""
    return ([task_schema(base, "sequencer", 0)] + [task_schema(base, "route", p) for p in range(route)]
            + [task_schema(base, "allocation", q) for q in range(allocation)]
            + [task_schema(base, "assembly", r) for r in range(assembly)])


NOT_READY = 1 << 30  # what `backlog` says while topics or tables are not made yet


async def backlog(url: str, base: str, kafka: KafkaSettings, inputs: InputTopics) -> int:
    """What the partitioned recalculator has still to do (`backlog_parts`, summed)."""
    parts = await backlog_parts(url, base, kafka, inputs)
    return NOT_READY if parts is None else sum(parts.values())


async def backlog_parts(url: str, base: str, kafka: KafkaSettings, inputs: InputTopics) -> dict[str, int] | None:
    """Where the partitioned recalculator has work left, and how much: records of a stage's
    topic partition not applied, internal records of a task not relayed, global records a
    route task has not read. None while its topics or tables are not made yet."""
    stage_topics = {
        "sequencer": [inputs.commands],
        "route": [inputs.orders, inputs.inventory, internal_topic(base, "order-commands")],
        "allocation": [internal_topic(base, "allocation")],
        "assembly": [internal_topic(base, "partials")],
    }
    names = [name for topics in stage_topics.values() for name in topics] + [internal_topic(base, "global")]
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        counts = await _partition_counts(admin, names)
        if any(count is None for count in counts.values()):
            return None
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(**kafka.client_options())
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(name, p) for name in names for p in range(counts[name])])
    finally:
        await consumer.stop()
    global_end = ends[TopicPartition(internal_topic(base, "global"), 0)]
    schemas = schemas_of(base, counts[inputs.orders], counts[internal_topic(base, "allocation")],
                         counts[internal_topic(base, "partials")])
    parts: dict[str, int] = {}
    db = make_engine(url, base)
    try:
        async with db.connect() as conn:  # one connection, the task schemas named in the queries
            stored = {(row.stage, row.topic, row.partition): row.position for row in
                      await conn.execute(text("SELECT stage, topic, partition, position FROM partition_owners"))}
            for stage, topics in stage_topics.items():
                for tp, end in ends.items():
                    if tp.topic in topics and end:
                        position = stored.get((stage, tp.topic, tp.partition))
                        parts[f"{stage} {tp.topic}:{tp.partition}"] = end - (position + 1 if position is not None else 0)
            for schema in schemas:
                rows = dict((await conn.execute(text(f'SELECT source, position FROM "{schema}".positions'))).all())
                top = (await conn.execute(text(f'SELECT max(seq) FROM "{schema}".internal_outbox'))).scalar() or 0
                parts[f"{schema} not relayed"] = top - (rows.get("internal-relay") or 0)
                if "_route" in schema:
                    parts[f"{schema} global not read"] = global_end - 1 - rows.get("applied:global", -1)
    except ProgrammingError:
        return None
    finally:
        await db.dispose()
    return {where: left for where, left in parts.items() if left}
