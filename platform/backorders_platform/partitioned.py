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
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
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
    """What a partitioned stage does; `name` keys its rows in `partition_owners`."""

    name: str = "stage"

    async def load(self, partition: TopicPartition, conn: AsyncConnection) -> Any:
        """The partition's state, read on `conn` (the claim's transaction)."""
        return None

    async def apply(self, partition: TopicPartition, state: Any, records: list, conn: AsyncConnection) -> None:
        """Apply `records` (in offset order) to `state`, writing state and outputs on `conn`.
        On an error the transaction is rolled back and the state is loaded again."""
        raise NotImplementedError

    def drop(self, partition: TopicPartition, state: Any) -> None:
        """The partition is no longer this runner's: forget its state."""


@dataclass(slots=True)
class Owned:
    epoch: int
    next: int  # the offset of the next record to apply
    state: Any


class PartitionedRunner(ConsumerRebalanceListener):
    def __init__(self, stage: Stage, db: AsyncEngine, kafka: KafkaSettings, topics: list[str],
                 group_id: str, *, owner: str | None = None, batch_size: int = 500,
                 consumer_options: dict | None = None) -> None:
        self.stage, self.db, self.kafka = stage, db, kafka
        self.topics, self.group_id, self.batch_size = list(topics), group_id, batch_size
        self.owner = owner or uuid.uuid4().hex
        self.consumer_options = consumer_options or {}
        self.consumer: AIOKafkaConsumer | None = None
        self.owned: dict[TopicPartition, Owned] = {}
        self.fenced = 0  # batches refused by the fence
        # Held while a batch is applied and while partitions are claimed or dropped: the
        # listener (run by aiokafka's coordination task) waits for the batch in flight.
        self._lock = asyncio.Lock()

    # The listener. aiokafka runs it from its coordination task and swallows its errors:
    # it must not call getmany(), and it must finish (the group waits for it). A partition
    # whose claim has not succeeded stays paused, and its records are never applied.

    async def on_partitions_revoked(self, revoked) -> None:
        async with self._lock:
            for tp in revoked:
                self._forget(tp)
        log.info("partitions_revoked", owner=self.owner, partitions=_names(revoked))

    async def on_partitions_assigned(self, assigned) -> None:
        self.consumer.pause(*assigned)
        async with self._lock:
            for tp in sorted(assigned):
                await self._take_patiently(tp)
        log.info("partitions_assigned", owner=self.owner, partitions=_names(assigned))

    async def _take_patiently(self, tp: TopicPartition) -> None:
        await _patiently(lambda: self._take(tp), "claim_failed", tp)

    async def _take(self, tp: TopicPartition) -> None:
        """Claim `tp`, load its position and state in the claim's snapshot, seek after it."""
        self._forget(tp)
        if tp not in self.consumer.assignment() or _rebalancing(self.consumer):
            # Revoked, or about to be (a batch that failed while the group rebalances): a
            # claim could fence out the member the group gives it to. If it stays here, the
            # assignment's listener claims it.
            return
        async with self.db.connect() as conn:
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                row = (await conn.execute(_CLAIM, {**self._key(tp), "owner": self.owner})).one()
                state = await self.stage.load(tp, conn)
        if row.position is None:
            # One ListOffsets request (seek_to_beginning would wait on the fetcher, which
            # this listener holds up).
            position = (await self.consumer.beginning_offsets([tp]))[tp]
        else:
            position = row.position + 1
        self.owned[tp] = Owned(row.epoch, position, state)
        self.consumer.seek(tp, position)
        self.consumer.resume(tp)

    def _forget(self, tp: TopicPartition) -> None:
        owned = self.owned.pop(tp, None)
        if owned is not None:
            self.stage.drop(tp, owned.state)

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
                async with self._lock:
                    for tp, records in sorted(fetched.items()):
                        await self._apply(tp, records)
        finally:
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

    async def _apply(self, tp: TopicPartition, records: list) -> None:
        owned = self.owned.get(tp)
        if owned is None:
            return  # not claimed (yet): never applied
        # A batch fetched before a rebalance may hold records applied since (by this runner
        # or another): what is before the claimed position is skipped.
        records = [record for record in records if record.offset >= owned.next]
        if not records:
            return
        try:
            async with self.db.begin() as conn:
                epoch = (await conn.execute(_FENCE, self._key(tp))).scalar_one_or_none()
                if epoch != owned.epoch:
                    raise FencedOut(f"{tp.topic}:{tp.partition} is owned by epoch {epoch}, not {owned.epoch}")
                await self.stage.apply(tp, owned.state, records, conn)
                await conn.execute(_STORE, {**self._key(tp), "position": records[-1].offset})
        except FencedOut as error:
            # Claimed by another member: the group's revocation is on its way. Until then
            # the partition is neither fetched nor written.
            self.fenced += 1
            log.warning("fenced_out", owner=self.owner, error=str(error))
            self._forget(tp)
            if tp in self.consumer.assignment():
                self.consumer.pause(tp)
            return
        except Exception as error:  # noqa: BLE001 - the database went away, or the stage failed
            # The state in memory may be ahead of the rolled-back transaction: claimed and
            # loaded again, and fetched again from the stored position.
            log.error("batch_failed", owner=self.owner, partition=_names([tp]), error=repr(error))
            await self._take_patiently(tp)
            return
        owned.next = records[-1].offset + 1


def _rebalancing(consumer: AIOKafkaConsumer) -> bool:
    # aiokafka marks the subscription when the group starts rejoining, before the
    # revocation listener runs (which waits for the batch in flight); it has no public
    # accessor for it.
    return consumer._subscription.reassignment_in_progress  # noqa: SLF001


def _names(partitions) -> list[str]:
    return [f"{tp.topic}:{tp.partition}" for tp in sorted(partitions)]


async def _patiently(work, event: str, tp: TopicPartition | None = None) -> None:
    """`work()` tried with backoff until it succeeds, each failure logged as `event`."""

    def told(error: BaseException, _outage: bool, _failures: int, retry_in: float) -> None:
        log.warning(event, partition=_names([tp]) if tp else None, error=repr(error), retry_in=retry_in)

    # tenacity catches BaseException: without this, a runner stopped (cancelled) while an
    # attempt runs would try again instead of stopping.
    await until_done(work, on_error=told)
