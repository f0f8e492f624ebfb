"""The partitioned recalculator's front: the sequencer and the route stage (docs/sharding.md,
"The recalculator on consumer groups").

- **The sequencer** consumes the commands topic (one partition by contract, so one member
  of its group at a time) and reads the reference topic whole. It puts what every route
  task must see in one order on the one-partition global topic: reference data, and the
  parts of commands that concern every SKU or some SKUs. A command naming orders is cut
  into one piece per order (`split_command`), each sent to the order-commands partition of
  its order. It dead-letters what it cannot read.
- **Route tasks** (`RouteTask`) are co-partitioned: task *p* holds partition *p* of the
  orders, inventory and order-commands topics, which have the same partition count. Each
  also reads the global topic whole, from the offset it stored. It validates, dead-letters
  what it refuses, and writes envelopes to the allocation topic and split-off orders to the
  order-commands partition of their new id. A split-off order received before the task has
  routed the group merges its sender had waits in the task's state, and a refused one is
  dead-lettered.

Both keep their state in a schema per task (`<base>_sequencer0`, `<base>_route<p>`), their
internal records in the internal outbox with their own sequence, and their positions in
other topics (the global topic, the reference partitions) in `positions`, all in the batch
transaction of the runner.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections import deque
from dataclasses import dataclass
from datetime import datetime

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2
from backorder_events import DeadLetter, InvalidEvent, parse_event
from backorder_events.topics import REFERENCE_TYPES
from backorders_platform import logs
from backorders_platform.database import upsert
from backorders_platform.kafka_settings import KafkaSettings
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ..adapters import pipeline_tables as pt
from ..adapters import tables as t
from ..adapters.partitioned_codec import (
    decode_transfer,
    encode_allocation,
    encode_transfer,
    load_route_state,
    route_state,
)
from ..adapters.repository import BatchRows, Repository, _chunks
from ..config import RetentionSettings
from ..domain.partitioned import SPLIT_TYPES, RouteTask, split_command
from ..domain.results import HELD, REJECTED
from ..domain.model import to_us
from ..ordering import NO_TIME, RANKS
from ..processing import read
from ..publishing import dead_letter
from .partitioned import TaskPartition, TaskStage, applied_rows, headers_of, use_schema

log = logs.get("recalculator.partitioned")

HELD_PLACES = "route-held-places"  # meta key: where each input held for its order was read
GLOBAL = "global"  # `applied:global`: the last offset of the global topic a route task applied
REFERENCE = "reference:"  # `applied:reference:<partition>`: the sequencer's reference positions
# Default wait, in event time, for an order a route task does not know yet (a split-off on
# its way from another route task, or a creation further down its partition).
HOLD_WAIT_US = 10 * 60 * 1_000_000


def key_partition(key: str, partitions: int) -> int:
    """The partition a producer's default partitioner gives `key` (murmur2, as Kafka's Java
    client and aiokafka do): where the orders topic holds an order id's events."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True, slots=True)
class PartitionedTopics:
    """Every topic of the partitioned recalculator, and the partition counts it was built
    with (stored with the state; a worker that finds others refuses to start)."""

    orders: str
    inventory: str
    reference: str
    commands: str
    order_commands: str
    global_: str
    allocation: str
    partials: str
    route_partitions: int
    allocation_partitions: int
    assembly_partitions: int


class TopicCache:
    """Every record of a topic's partitions, read from the beginning and kept in memory for
    the tasks of this process that read it whole (the global topic, the reference topic:
    small, as reference data is). Records are (offset, value, key)."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self.kafka, self.topic = kafka, topic
        self.records: dict[int, list] = {}
        self.offsets: dict[int, list[int]] = {}
        self.task: asyncio.Task | None = None
        self.changed = asyncio.Event()

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    def after(self, partition: int, offset: int) -> list:
        """The records of `partition` after `offset`."""
        offsets = self.offsets.get(partition, [])
        return self.records.get(partition, [])[bisect.bisect_right(offsets, offset):]

    def last(self, partition: int) -> int:
        offsets = self.offsets.get(partition)
        return offsets[-1] if offsets else -1

    def partitions(self) -> list[int]:
        return sorted(self.records)

    async def _read(self) -> None:
        while True:
            consumer = AIOKafkaConsumer(**self.kafka.client_options(), enable_auto_commit=False,
                                        auto_offset_reset="earliest")
            try:
                await consumer.start()
                partitions = await _partitions(consumer, self.topic)
                tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
                consumer.assign(tps)
                for tp in tps:
                    self.records.setdefault(tp.partition, [])
                    self.offsets.setdefault(tp.partition, [])
                    consumer.seek(tp, self.last(tp.partition) + 1)
                while True:
                    fetched = await consumer.getmany(timeout_ms=500, max_records=2000)
                    for tp, records in fetched.items():
                        for record in records:
                            if record.offset > self.last(tp.partition):
                                self.records[tp.partition].append((record.offset, record.value, record.key))
                                self.offsets[tp.partition].append(record.offset)
            except asyncio.CancelledError:
                raise
            except KafkaError as error:
                log.warning("topic_cache_failed", topic=self.topic, error=repr(error))
                await asyncio.sleep(0.5)
            finally:
                await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    """The topic's partitions, waiting for the topic to exist."""
    while True:
        cluster = await consumer._client.fetch_all_metadata()  # noqa: SLF001 - no public call
        partitions = cluster.partitions_for_topic(topic)
        if partitions:
            return partitions
        await asyncio.sleep(0.2)


# -- the sequencer ------------------------------------------------------------------------------


class SequencerStage(TaskStage):
    """One task over the commands topic's one partition, reading the reference topic whole."""

    name = "sequencer"
    produces_internal = True

    def __init__(self, base: str, topics: PartitionedTopics, reference: TopicCache, relays=None) -> None:
        super().__init__(base, relays)
        self.topics, self.reference = topics, reference

    def new_task(self, partition: int) -> None:
        return None

    def load_protocol(self, task, text: str) -> None:
        pass

    def has_work(self, task, state: TaskPartition) -> bool:
        return any(self.reference.last(p) > state.applied.get(REFERENCE + str(p), -1)
                   for p in self.reference.partitions())

    async def apply(self, task, state: TaskPartition, records: list, conn: AsyncConnection) -> None:
        await use_schema(conn, state.schema, self.base)
        topics, internal, dead = self.topics, [], []

        def send(topic: str, target: int, key: str, payload: bytes) -> None:
            state.sent += 1
            internal.append({"seq": state.sent, "topic": topic, "partition": target, "key": key,
                             "time": None, "payload": payload})

        def to_global(event, raw) -> None:
            send(topics.global_, 0, event.id, raw if raw is not None else event.model_dump_json().encode())

        inputs = []  # (topic, partition, offset, raw): reference data first, then commands
        for partition in self.reference.partitions():
            after = state.applied.get(REFERENCE + str(partition), -1)
            for offset, value, _ in self.reference.after(partition, after):
                inputs.append((topics.reference, partition, offset, value))
                state.applied[REFERENCE + str(partition)] = offset
        inputs += [(record.topic, record.partition, record.offset, record.value) for record in records]
        for topic, partition, offset, raw in inputs:
            event = read(raw)
            if isinstance(event, InvalidEvent):
                dead.append(DeadLetter.from_error(raw, event, topic, offset, partition))
                log.warning("dead_lettered", source=topic, partition=partition, position=offset,
                            reason=event.reason)
                continue
            if event.type in REFERENCE_TYPES or topic == topics.reference:
                to_global(event, raw)
            elif event.type in SPLIT_TYPES:
                split = split_command(event)
                for order_id, piece in split.pieces:
                    send(topics.order_commands, key_partition(order_id, topics.route_partitions), order_id,
                         piece.model_dump_json().encode())
                if split.broadcast is not None:
                    to_global(split.broadcast, raw if split.broadcast is event else None)
            elif getattr(event.data, "order_id", None):
                order_id = event.data.order_id
                send(topics.order_commands, key_partition(order_id, topics.route_partitions), order_id, raw)
            else:
                to_global(event, raw)
        rows = BatchRows(dead_letters=[letter.model_dump() for letter in dead])
        rows.positions = applied_rows(state.applied)

        async def handed_on(conn) -> None:
            if internal:
                await conn.execute(pt.internal_outbox.insert(), internal)

        rows.extra.append(handed_on)
        await Repository(None).write_rows(conn, rows)


def _rank(event_type: str, topic: str, topics: PartitionedTopics) -> int:
    """The tie-break at one instant, as the one-process order has it (ordering.ROLES)."""
    if event_type in REFERENCE_TYPES:
        return RANKS["reference"]
    if topic == topics.inventory:
        return RANKS["inventory"]
    if topic == topics.orders:
        return RANKS["orders"]
    return RANKS["commands"]


def _order_key(record, topic: str, topics: PartitionedTopics, last) -> tuple[int, int]:
    """A local record's (time, rank); one whose time cannot be read takes its lane's."""
    try:
        doc = orjson.loads(record.value)
        moment = to_us(datetime.fromisoformat(doc["time"].replace("Z", "+00:00")))
        kind = doc.get("type")
    except Exception:  # noqa: BLE001 - unreadable: refused when routed
        return last if last is not None else (NO_TIME, 0)
    if not isinstance(kind, str):
        kind = ""
    return (moment, _rank(kind, topic, topics))


# -- route tasks --------------------------------------------------------------------------------


class RouteStage(TaskStage):
    """Route tasks over the co-partitioned orders, inventory and order-commands topics, each
    reading the global topic whole. Route task 0 alone dead-letters what every route task
    refuses alike (an input of the global topic)."""

    name = "route"
    co_partitioned = True
    produces_internal = True

    def __init__(self, base: str, topics: PartitionedTopics, global_log: TopicCache, relays=None, *,
                 hold_wait: int | None = HOLD_WAIT_US, retention: RetentionSettings | None = None) -> None:
        super().__init__(base, relays)
        self.topics, self.global_log = topics, global_log
        self.hold_wait = hold_wait
        self.windows = (retention or RetentionSettings()).engine_options()
        # Per task, in memory: each lane's last routed (time, rank), and whether it holds
        # nothing more (from the runner). After a restart a lane counts as passed once it
        # routes again or is found at its end.
        self.passed: dict[int, dict] = {}
        self.ends: dict[int, dict] = {}

    def new_task(self, partition: int) -> RouteTask:
        count = self.topics.route_partitions
        return RouteTask(partition, count, self.topics.allocation_partitions, hold_wait=self.hold_wait,
                         task_of=lambda order_id: key_partition(order_id, count), **self.windows)

    async def load_task(self, task: RouteTask, conn: AsyncConnection) -> None:
        router = task.router
        await Repository(None).load(router.engine, conn)
        for row in await conn.execute(select(pt.order_shards)):
            router.known[row.order_id] = {int(s) for s in row.shards.split(",") if s}
        router.groups.load(dict((await conn.execute(select(pt.sku_groups.c.sku, pt.sku_groups.c.root))).all()))

    def load_protocol(self, task: RouteTask, text: str) -> None:
        load_route_state(task, text)

    async def load(self, partition, conn: AsyncConnection) -> TaskPartition:
        state = await super().load(partition, conn)
        stored = (await conn.execute(select(t.meta.c.value).where(t.meta.c.key == HELD_PLACES))).scalar()
        state.held_places = orjson.loads(stored) if stored else {}
        return state

    def has_work(self, task, state: TaskPartition) -> bool:
        """Global records to route, and every lane at its end (else the lane's records,
        when they come, bring the global records along)."""
        return (self.global_log.last(0) > state.applied.get(GLOBAL, -1)
                and all(self.ends.get(task, {}).values()))

    def wants_ends(self, task, state: TaskPartition) -> bool:
        return self.global_log.last(0) > state.applied.get(GLOBAL, -1)

    def note_ends(self, task, state: TaskPartition, ends: dict) -> None:
        self.ends[task] = ends

    def drop(self, partition, state: TaskPartition) -> None:
        super().drop(partition, state)
        self.passed.pop(partition, None)
        self.ends.pop(partition, None)

    def _route_local(self, route: RouteTask, state: TaskPartition, record, handle, refuse_unreadable: list) -> None:
        place = (record.topic, record.partition, record.offset)
        if record.topic == self.topics.order_commands:
            headers = headers_of(record)
            if not self.is_fresh(state, headers):
                return
            doc = orjson.loads(record.value)
            if "specversion" not in doc:
                routed = route.adopt(decode_transfer(record.value))
                if routed.status != HELD:  # held: taken in with a later merge, sent then
                    handle(None, routed, None, place)
                return
            event = parse_event(record.value)
        else:
            event = read(record.value)
            if isinstance(event, InvalidEvent):
                refuse_unreadable.append(DeadLetter.from_error(record.value, event, *place))
                log.warning("dead_lettered", source=record.topic, partition=record.partition,
                            position=record.offset, reason=event.reason)
                return
        routed = route.route(event)
        if routed.status == HELD:
            # Where it was read, for its dead letter if it is refused when released.
            state.held_places.setdefault(event.id, []).append(list(place))
            handle(None, routed, None, place)  # what the time it brought settled
        else:
            handle(event, routed, record.value, place)

    async def apply(self, task, state: TaskPartition, records: list, conn: AsyncConnection) -> None:
        await use_schema(conn, state.schema, self.base)
        route: RouteTask = state.task
        topics, internal, dead = self.topics, [], []
        raws: dict[int, bytes] = {}

        def raw_of(event):
            return raws.get(id(event))

        def send(topic: str, target: int, key: str, payload: bytes) -> None:
            state.sent += 1
            internal.append({"seq": state.sent, "topic": topic, "partition": target, "key": key,
                             "time": None, "payload": payload})

        def refuse(raw, reason: str, event_id: str, event_type: str,
                   topic: str, partition: int | None, offset: int | None) -> None:
            dead.append(dead_letter(raw, reason, topic, offset, event_id=event_id, event_type=event_type,
                                    partition=partition))
            log.warning("dead_lettered", source=topic, partition=partition, position=offset,
                        event_id=event_id, reason=reason)

        def handle(event, routed, raw, place, *, letters: bool = True) -> None:
            if event is not None:
                raws[id(event)] = raw
            if routed.status == REJECTED and event is not None and letters:
                refuse(raw if raw is not None else event.model_dump_json(), routed.reason, event.id, event.type,
                       *place)
            for transfer, reason in routed.refused_transfers:  # this task's own, whatever `letters`
                refuse(encode_transfer(transfer), reason, transfer.cause_id, "OrderSplit", *place)
            for partition, envelope in routed.envelopes:
                send(topics.allocation, partition, envelope.cause_id, encode_allocation(envelope, raw_of))
            for target, transfer in routed.transfers:
                send(topics.order_commands, target, transfer.order.order_id, encode_transfer(transfer))
            for held, decided in routed.settled:  # sent after what decided them
                if held is None:  # an order taken in: its own refusals are this task's
                    handle(None, decided, None, place, letters=letters)
                    continue
                # A held input is this task's own (a broadcast input never waits for an
                # order): dead-lettered here, under the place it was read from.
                places = state.held_places.get(held.id)
                own = tuple(places.pop(0)) if places else place
                if places == []:
                    del state.held_places[held.id]
                handle(held, decided, None, own)
            if event is not None:
                raws.pop(id(event), None)

        # The batch's records and the global topic's, merged by event time: a global record
        # goes once every lane of the task has passed its time (a later record routed, or
        # nothing more in the lane), as the one-process engine takes inputs in time order.
        passed = self.passed.setdefault(task, {})
        ends = self.ends.get(task, {})
        lanes: dict[tuple[str, int], deque] = {}
        for record in records:
            lane = (record.topic, record.partition)
            queue = lanes.setdefault(lane, deque())
            last = queue[-1][0] if queue else passed.get(lane)
            queue.append((_order_key(record, record.topic, topics, last), record))
        pending = deque(self.global_log.after(0, state.applied.get(GLOBAL, -1)))
        head = None  # the first pending global record, parsed
        while True:
            first = min(((queue[0][0], lane) for lane, queue in lanes.items() if queue), default=None)
            if pending:
                if head is None:
                    offset, value, _ = pending[0]
                    event = parse_event(value)  # the sequencer wrote only what it could read
                    head = (offset, value, event, (to_us(event.time), _rank(event.type, topics.global_, topics)))
                offset, value, event, key = head
                others_passed = all(
                    (lane in lanes and lanes[lane]) or ends.get(lane, False) or passed.get(lane, (NO_TIME,)) >= key
                    for lane in ends)
                if (first is None or key <= first[0]) and others_passed:
                    pending.popleft()
                    head = None
                    state.applied[GLOBAL] = offset
                    routed = route.route(event, broadcast=True)
                    handle(event, routed, value, (topics.global_, 0, offset), letters=route.task == 0)
                    continue
            if first is None:
                break
            key, lane = first
            _, record = lanes[lane].popleft()
            passed[lane] = key
            self._route_local(route, state, record, handle, refuse_unreadable=dead)
        router = route.router
        rows = Repository.batch_rows(router.engine, router.engine.take_changes(), [], dead)
        rows.meta.append({"key": self.name, "value": route_state(route)})
        rows.meta.append({"key": HELD_PLACES, "value": orjson.dumps(state.held_places).decode()})
        rows.positions = applied_rows(state.applied)
        known = [{"order_id": o, "shards": ",".join(map(str, sorted(router.known[o])))}
                 for o in sorted(router.changed_orders) if o in router.known]
        forgotten = [o for o in sorted(router.changed_orders) if o not in router.known]
        groups = [{"sku": s, "root": router.groups.parent[s]} for s in sorted(router.groups.changed)]
        router.changed_orders = set()
        router.groups.changed = set()

        async def handed_on(conn) -> None:
            if internal:
                await conn.execute(pt.internal_outbox.insert(), internal)
            if known:
                await upsert(conn, pt.order_shards, known, ["order_id"])
            for chunk in _chunks(forgotten):
                await conn.execute(delete(pt.order_shards).where(pt.order_shards.c.order_id.in_(chunk)))
            if groups:
                await upsert(conn, pt.sku_groups, groups, ["sku"])

        rows.extra.append(handed_on)
        await Repository(None).write_rows(conn, rows)
