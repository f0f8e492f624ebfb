"""A partitioned stage on Kafka's consumer-group protocol, its state per partition in
PostgreSQL (docs/sharding.md, "Partitioned stages on consumer groups").

The group's assignment decides which member consumes a partition; PostgreSQL decides which
member may write it. On assignment, each partition is claimed: its row in `partition_owners`
gets a new epoch (and this runner as owner), and in the same REPEATABLE READ transaction the
stored position and the stage's state of the partition are loaded; the consumer is then
sought to the record after the stored position. Every batch of a partition is one
transaction that first locks the partition's row and checks the epoch is still this
runner's (else FencedOut: nothing is written), then lets the stage write its state and
outputs, then stores the position. A former owner that still runs can therefore write
nothing once the partition is claimed again, and a crash loses nothing and applies nothing
twice. Kafka's committed offsets are not used.
"""

from __future__ import annotations

import asyncio
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .database import FencedOut
from .kafka_settings import KafkaSettings
from . import logs
from .migrations import MigrationSet
from .retrying import until_done

__all__ = ["FencedOut", "PartitionedRunner", "Stage", "migrate"]

log = logs.get("backorders.partitioned")

MIGRATIONS = MigrationSet(Path(__file__).with_name("partitioned_migrations"),
                          version_table="partitioned_alembic_version", lock_name="part")
migrate = MIGRATIONS.upgrade

_CLAIM = text(
    "INSERT INTO partition_owners (stage, topic, partition, epoch, owner) "
    "VALUES (:stage, :topic, :partition, 1, :owner) "
    "ON CONFLICT (stage, topic, partition) DO UPDATE "
    "SET epoch = partition_owners.epoch + 1, owner = EXCLUDED.owner "
    "RETURNING epoch, position"
)
_FENCE = text("SELECT epoch FROM partition_owners "
              "WHERE stage = :stage AND topic = :topic AND partition = :partition FOR UPDATE")
_STORE = text("UPDATE partition_owners SET position = :position "
              "WHERE stage = :stage AND topic = :topic AND partition = :partition")


class Stage:
    """What a partitioned stage does; `name` keys its rows in `partition_owners`.

    A stage's unit of state is a *task*: by default one topic partition; with
    `co_partitioned`, partition *p* of every topic the runner consumes (topics created with
    the same partition count and assigned together, as Kafka Streams does for a task of
    several input topics). `task` below is the `TopicPartition`, or the partition number."""

    name: str = "stage"
    co_partitioned: bool = False

    async def load(self, task: Any, conn: AsyncConnection) -> Any:
        """The task's state, read on `conn` (the claim's transaction)."""
        return None

    async def apply(self, task: Any, state: Any, records: list, conn: AsyncConnection) -> None:
        """Apply `records` (in offset order per topic partition) to `state`, writing state
        and outputs on `conn`. On an error the transaction is rolled back and the state is
        loaded again. `records` may be empty when `has_work` said so."""
        raise NotImplementedError

    def has_work(self, task: Any, state: Any) -> bool:
        """Work for a batch without records of its own (inputs from elsewhere)."""
        return False

    def wants_ends(self, task: Any, state: Any) -> bool:
        """Whether `note_ends` should be told which partitions hold nothing more (a
        ListOffsets request per task and batch while it says so)."""
        return False

    def note_ends(self, task: Any, state: Any, ends: dict) -> None:
        """Before `has_work` and `apply`: for each of the task's topic partitions, whether
        it holds nothing beyond what `apply` gets, by end offsets read now (all False when
        `wants_ends` did not ask)."""

    def committed(self, task: Any, state: Any) -> None:
        """After a batch's transaction committed (what it wrote can be read now)."""

    def drop(self, task: Any, state: Any) -> None:
        """The task is no longer this runner's: forget its state."""


@dataclass(slots=True)
class Owned:
    epochs: dict  # TopicPartition → the epoch of this runner's claim
    next: dict  # TopicPartition → the offset of the next record to apply
    state: Any


class PartitionedRunner(ConsumerRebalanceListener):
    def __init__(self, stage: Stage, db: AsyncEngine, kafka: KafkaSettings, topics: list[str],
                 group_id: str, *, owner: str | None = None, batch_size: int = 500,
                 consumer_options: dict | None = None) -> None:
        self.stage, self.db, self.kafka = stage, db, kafka
        self.topics, self.group_id, self.batch_size = list(topics), group_id, batch_size
        self.owner = owner or uuid.uuid4().hex
        self.consumer_options = dict(consumer_options or {})
        if stage.co_partitioned:
            # Partition p of every topic to one member (the topics' counts are equal).
            self.consumer_options.setdefault("partition_assignment_strategy", (RangePartitionAssignor,))
        self.consumer: AIOKafkaConsumer | None = None
        self.owned: dict[Any, Owned] = {}  # task → its claims and state
        self.fenced = 0  # batches refused by the fence
        self.batches = self.records = 0  # committed, and the records they applied
        # Held while a batch is applied and while partitions are claimed or dropped: the
        # listener (run by aiokafka's coordination task) waits for the batch in flight.
        self._lock = asyncio.Lock()

    def task_of(self, tp: TopicPartition) -> Any:
        return tp.partition if self.stage.co_partitioned else tp

    def partitions_of(self, task: Any) -> list[TopicPartition]:
        """The task's topic partitions this member is assigned."""
        assigned = self.consumer.assignment() if self.consumer is not None else set()
        return sorted(tp for tp in assigned if self.task_of(tp) == task)

    # The listener. aiokafka runs it from its coordination task and swallows its errors:
    # it must not call getmany(), and it must finish (the group waits for it). A partition
    # whose claim has not succeeded stays paused, and its records are never applied.

    async def on_partitions_revoked(self, revoked) -> None:
        async with self._lock:
            for task in sorted({self.task_of(tp) for tp in revoked}, key=str):
                self._forget(task)
        log.info("partitions_revoked", owner=self.owner, partitions=_names(revoked))

    async def on_partitions_assigned(self, assigned) -> None:
        self.consumer.pause(*assigned)
        async with self._lock:
            for task in sorted({self.task_of(tp) for tp in assigned}, key=str):
                await self._take_patiently(task)
        log.info("partitions_assigned", owner=self.owner, partitions=_names(assigned))

    async def _take_patiently(self, task: Any) -> None:
        await _patiently(lambda: self._take(task), "claim_failed", task)

    async def _take(self, task: Any) -> None:
        """Claim the task's partitions, load their positions and the task's state in the
        claim's snapshot, seek after the positions."""
        self._forget(task)
        tps = self.partitions_of(task)
        if not tps or _rebalancing(self.consumer):
            # Revoked, or about to be (a batch that failed while the group rebalances): a
            # claim could fence out the member the group gives it to. If it stays here, the
            # assignment's listener claims it.
            return
        epochs, positions = {}, {}
        async with self.db.connect() as conn:
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                for tp in tps:
                    row = (await conn.execute(_CLAIM, {**self._key(tp), "owner": self.owner})).one()
                    epochs[tp], positions[tp] = row.epoch, row.position
                state = await self.stage.load(task, conn)
        unread = [tp for tp in tps if positions[tp] is None]
        # One ListOffsets request (seek_to_beginning would wait on the fetcher, which this
        # listener holds up).
        beginnings = await self.consumer.beginning_offsets(unread) if unread else {}
        nexts = {tp: beginnings[tp] if positions[tp] is None else positions[tp] + 1 for tp in tps}
        self.owned[task] = Owned(epochs, nexts, state)
        for tp, position in nexts.items():
            self.consumer.seek(tp, position)
        self.consumer.resume(*tps)

    def _forget(self, task: Any) -> None:
        owned = self.owned.pop(task, None)
        if owned is not None:
            self.stage.drop(task, owned.state)

    def _key(self, tp: TopicPartition) -> dict:
        return {"stage": self.stage.name, "topic": tp.topic, "partition": tp.partition}

    # Processing.

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; waits out the broker and the database."""
        await _patiently(lambda: migrate(self.db), "migration_failed")
        await _patiently(self._start, "broker_unavailable")
        try:
            while not stop.is_set():
                try:
                    fetched = await self.consumer.getmany(timeout_ms=200, max_records=self.batch_size)
                except KafkaError as error:
                    log.warning("fetch_failed", error=str(error))
                    await asyncio.sleep(0.5)
                    continue
                by_task: dict[Any, list] = {}
                for tp, records in sorted(fetched.items()):
                    by_task.setdefault(self.task_of(tp), []).extend(records)
                async with self._lock:
                    for task, records in by_task.items():
                        await self._apply(task, records)
                    for task, owned in list(self.owned.items()):
                        if task not in by_task:
                            try:
                                ends = await self._ends(task, owned, [])
                            except KafkaError as error:
                                log.warning("end_offsets_failed", task=str(task), error=repr(error))
                                continue
                            self.stage.note_ends(task, owned.state, ends)
                            if self.stage.has_work(task, owned.state):
                                await self._apply(task, [])
        finally:
            log.info("runner_stopped", stage=self.stage.name, batches=self.batches, records=self.records,
                     fenced=self.fenced, skipped=getattr(self.stage, "skipped", None))
            await self.consumer.stop()
            self.consumer = None

    async def _start(self) -> None:
        consumer = AIOKafkaConsumer(
            **self.kafka.client_options(), group_id=self.group_id, enable_auto_commit=False,
            auto_offset_reset="earliest", **self.consumer_options,
        )
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()
            raise
        self.consumer = consumer
        consumer.subscribe(self.topics, listener=self)

    async def _ends(self, task: Any, owned: Owned, records: list) -> dict:
        after = dict(owned.next)
        for record in records:
            after[TopicPartition(record.topic, record.partition)] = record.offset + 1
        if not self.stage.wants_ends(task, owned.state):
            return dict.fromkeys(after, False)
        # Read now, not the last fetch's high watermarks: a partition whose later records
        # have not been fetched yet must not count as holding nothing more.
        ends = await self.consumer.end_offsets(sorted(after))
        return {tp: next_offset >= ends[tp] for tp, next_offset in after.items()}

    async def _apply(self, task: Any, records: list) -> None:
        owned = self.owned.get(task)
        if owned is None:
            return  # not claimed (yet): never applied
        # A batch fetched before a rebalance may hold records applied since (by this runner
        # or another): what is before the claimed position is skipped.
        records = [record for record in records
                   if record.offset >= owned.next.get(TopicPartition(record.topic, record.partition), 1 << 62)]
        try:
            self.stage.note_ends(task, owned.state, await self._ends(task, owned, records))
        except KafkaError as error:
            log.warning("end_offsets_failed", task=str(task), error=repr(error))
            self.stage.note_ends(task, owned.state, dict.fromkeys(owned.next, False))
        if not records and not self.stage.has_work(task, owned.state):
            return
        last: dict[TopicPartition, int] = {}
        for record in records:
            last[TopicPartition(record.topic, record.partition)] = record.offset
        try:
            async with self.db.begin() as conn:
                for tp, claimed in sorted(owned.epochs.items()):
                    epoch = (await conn.execute(_FENCE, self._key(tp))).scalar_one_or_none()
                    if epoch != claimed:
                        raise FencedOut(f"{tp.topic}:{tp.partition} is owned by epoch {epoch}, not {claimed}")
                await self.stage.apply(task, owned.state, records, conn)
                for tp, offset in sorted(last.items()):
                    await conn.execute(_STORE, {**self._key(tp), "position": offset})
        except FencedOut as error:
            # Claimed by another member: the group's revocation is on its way. Until then
            # the task is neither fetched nor written.
            self.fenced += 1
            log.warning("fenced_out", owner=self.owner, error=str(error))
            tps = list(owned.epochs)
            self._forget(task)
            assigned = self.consumer.assignment()
            paused = [tp for tp in tps if tp in assigned]
            if paused:
                self.consumer.pause(*paused)
            return
        except Exception as error:  # noqa: BLE001 - the database went away, or the stage failed
            # The state in memory may be ahead of the rolled-back transaction: claimed and
            # loaded again, and fetched again from the stored position.
            log.error("batch_failed", owner=self.owner, task=str(task), error=repr(error),
                      where=traceback.format_exc(limit=-4))
            await self._take_patiently(task)
            return
        for tp, offset in last.items():
            owned.next[tp] = offset + 1
        self.batches += 1
        self.records += len(records)
        self.stage.committed(task, owned.state)


def _rebalancing(consumer: AIOKafkaConsumer) -> bool:
    # aiokafka marks the subscription when the group starts rejoining, before the
    # revocation listener runs (which waits for the batch in flight); it has no public
    # accessor for it.
    return consumer._subscription.reassignment_in_progress  # noqa: SLF001


def _names(partitions) -> list[str]:
    return [f"{tp.topic}:{tp.partition}" for tp in sorted(partitions)]


async def _patiently(work, event: str, task: Any = None) -> None:
    """`work()` tried with backoff until it succeeds, each failure logged as `event`."""

    def told(error: BaseException, _outage: bool, _failures: int, retry_in: float) -> None:
        log.warning(event, task=str(task) if task is not None else None, error=repr(error), retry_in=retry_in)

    # tenacity catches BaseException: without this, a runner stopped (cancelled) while an
    # attempt runs would try again instead of stopping.
    await until_done(work, on_error=told)
