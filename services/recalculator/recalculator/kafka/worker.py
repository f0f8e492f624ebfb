"""The recalculator fed from Kafka: the same engine and the same batch transactions as the
embedded runtime, with Kafka topic partitions as sources.

Correctness does not rest on Kafka's consumer offsets: the offset of the last record of
each partition is written in the transaction that holds the state it produced, and on start
the worker seeks every partition to the offset after the stored one. A worker killed at any
point resumes where its last commit left off; nothing of a lost batch was visible.

This worker is a single active instance: it holds a PostgreSQL advisory lock for its life,
takes every partition of the input topics itself (no consumer group rebalancing), and a
second worker waits on the lock as a standby that takes over when the first one dies.
Because a lock can be lost without its holder noticing (the server restarted), every batch
is also fenced: the active worker claims the state with a fresh token, and a batch whose
token is no longer the current one is refused, so a deposed worker can never write.

After a failed batch (the database or the broker went away) the worker returns to its last
commit: engine reloaded, lock and claim taken again, partitions sought back.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError

from .. import logs, metrics
from ..adapters import locks
from ..adapters.repository import FencedOut
from ..publishing import to_json
from ..runtime.embedded import EmbeddedRuntime, Record
from .settings import InputTopics, KafkaSettings

log = logs.get("recalculator.worker")
def lag_of(ends: dict[TopicPartition, int], stored: dict[str, int]) -> dict[str, int]:
    """Records not yet handled per `topic:partition`: end offset minus the offset after the
    last one stored with the state."""
    return {
        f"{tp.topic}:{tp.partition}": end - (stored.get(f"{tp.topic}:{tp.partition}", -1) + 1)
        for tp, end in sorted(ends.items(), key=lambda item: (item[0].topic, item[0].partition))
    }


def in_log_time_order(fetched: dict[TopicPartition, list]) -> list:
    """The records of several partitions interleaved by their timestamps, each partition's
    records staying in offset order: what was produced first is handled first, as far as
    a batch shows it (records of other topics are not held back for a later batch)."""
    lists = [fetched[tp] for tp in sorted(fetched, key=lambda tp: (tp.topic, tp.partition))]
    return list(heapq.merge(*lists, key=lambda message: message.timestamp))


def lock_id(schema: str | None) -> int:
    """One active worker per state: the lock is named after the schema holding it."""
    return locks.key("recalculator", schema)


class RecalculatorWorker:
    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        kafka: KafkaSettings | None = None,
        topics: InputTopics | None = None,
        batch_size: int = 1000,
        recalc_every_seconds: float = 0,
    ) -> None:
        self.schema = schema
        self.runtime = EmbeddedRuntime(url, schema=schema, batch_size=batch_size)
        self.kafka = kafka or KafkaSettings()
        self.topics = topics or InputTopics()
        self.batch_size = batch_size
        self.recalc_every_seconds = recalc_every_seconds
        self.recoveries = 0
        self.linger_seconds = 0.0  # see _linger
        self.consumer: AIOKafkaConsumer | None = None
        self._lock_connection = None
        self._in_flight: asyncio.Task | None = None  # the commit of the last prepared batch
        self._handled: dict[str, int] = {}  # last offset prepared, per `topic:partition`

    async def start(self, *, reset: bool = False) -> RecalculatorWorker:
        """Take the lock, load the state and seek. With `reset`, the stored state is emptied
        first (under the lock), so the topics are consumed again from the beginning."""
        await self._acquire_lock()
        if reset:
            await self.runtime.repository.create_schema()
            await self.runtime.repository.erase()
        await self.runtime.start()
        self.runtime.fence = await self.runtime.repository.claim()
        self.consumer = AIOKafkaConsumer(
            **self.kafka.client_options(), group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", max_partition_fetch_bytes=4 << 20,
        )
        await self.consumer.start()
        await self._assign_all()
        return self

    async def _acquire_lock(self) -> None:
        """Held on its own connection for the worker's life; PostgreSQL releases it when the
        process (or the server) goes away."""
        if self.runtime.db.dialect.name != "postgresql":
            return
        await self._release_lock()
        log.info("waiting_for_lock")
        self._lock_connection = await locks.hold(self.runtime.db, lock_id(self.schema))
        # Batches are written over the lock's connection: one fewer checkout per batch, and
        # a batch can only commit while the session holding the lock is alive.
        self.runtime.connection = self._lock_connection
        log.info("lock_acquired")

    async def _release_lock(self) -> None:
        connection, self._lock_connection = self._lock_connection, None
        self.runtime.connection = None
        await locks.release(connection)

    async def _assign_all(self) -> None:
        partitions = []
        for topic in self.topics.all():
            ids = None
            for _ in range(50):  # metadata of a topic created a moment ago may lag
                ids = self.consumer.partitions_for_topic(topic)
                if ids:
                    break
                await self.consumer._client.force_metadata_update()  # noqa: SLF001
                await asyncio.sleep(0.1)
            if not ids:
                raise RuntimeError(f"input topic {topic!r} does not exist")
            partitions.extend(TopicPartition(topic, p) for p in sorted(ids))
        self.consumer.assign(partitions)
        await self._seek_to_stored()

    async def _seek_to_stored(self) -> None:
        partitions = sorted(self.consumer.assignment(), key=lambda tp: (tp.topic, tp.partition))
        stored = await self.runtime.repository.positions()
        for tp in partitions:
            offset = stored.get(f"{tp.topic}:{tp.partition}")
            if offset is None:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset + 1)
        log.info("assigned", partitions=len(partitions), resumed=len(stored))

    async def stop(self) -> None:
        try:
            await self._finish_commit()
        except (SQLAlchemyError, OSError, FencedOut) as error:  # the next start resumes before it
            log.warning("last_commit_failed", error=str(error).splitlines()[0])
        if self.consumer is not None:
            await self.consumer.stop()
            self.consumer = None
        await self._release_lock()
        await self.runtime.close()

    async def __aenter__(self) -> RecalculatorWorker:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def poll_once(self, timeout_ms: int = 200) -> int:
        """Fetch what is there and handle it as one batch, committed before returning;
        returns the number of records."""
        count = await self._step(timeout_ms)
        await self._finish_commit()
        return count

    async def _step(self, timeout_ms: int = 200) -> int:
        """Fetch and prepare a batch, then start its commit once the previous batch's
        commit has succeeded. The engine works on batch n+1 while PostgreSQL writes batch n;
        commits stay in order, and a failed one stops the line (see `_recover`)."""
        fetched = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=self.batch_size)
        if self.linger_seconds and fetched:
            fetched = await self._linger(fetched)
        records = [
            Record(message.topic, message.offset, message.value, message.partition)
            for message in in_log_time_order(fetched)
        ]
        if not records:
            await self._finish_commit()
            return 0
        batch = await self.runtime.prepare_batch(records, yield_every=10)
        await self._finish_commit()
        self._in_flight = asyncio.create_task(self.runtime.commit_batch(batch))
        self._handled.update(batch.positions)
        return len(records)

    async def _linger(self, fetched: dict) -> dict:
        """Wait a moment for a fuller batch: each batch costs a transaction, and a small
        one costs it for a few records."""
        loop = asyncio.get_running_loop()
        until = loop.time() + self.linger_seconds
        count = sum(map(len, fetched.values()))
        while count < self.batch_size // 2 and loop.time() < until:
            await asyncio.sleep(0.005)
            more = await self.consumer.getmany(timeout_ms=0, max_records=self.batch_size - count)
            for tp, messages in more.items():
                fetched.setdefault(tp, []).extend(messages)
                count += len(messages)
        return fetched

    async def _finish_commit(self) -> None:
        if self._in_flight is not None:
            task, self._in_flight = self._in_flight, None
            await task

    async def run(self, stop: asyncio.Event, on_batch: Callable[[int], None] | None = None) -> None:
        scheduler = None
        if self.recalc_every_seconds > 0:
            scheduler = asyncio.create_task(self._schedule_recalculations(stop))
        batches = 0
        try:
            while not stop.is_set():
                batches += 1
                if batches % 20 == 1:
                    await self._report_lag()
                try:
                    count = await self._step()
                except KafkaError as error:
                    # Nothing was handled: fetch again once the broker is back.
                    log.warning("fetch_failed", error=str(error))
                    await asyncio.sleep(0.5)
                    continue
                except (SQLAlchemyError, OSError, FencedOut) as error:
                    log.error("batch_failed", error=str(error).splitlines()[0])
                    self.recoveries += 1
                    await self._recover(stop)
                    continue
                if on_batch is not None and count:
                    on_batch(count)
            await self._finish_commit()
        finally:
            if scheduler is not None:
                scheduler.cancel()
                await asyncio.gather(scheduler, return_exceptions=True)

    async def _recover(self, stop: asyncio.Event, pause: float = 0.5) -> None:
        """Back to the last commit after a failed batch (the database went away): the engine
        in memory is ahead of the database, so it is loaded again, the lock taken again (it
        went with the connection), and every partition sought back to its stored offset."""
        if self._in_flight is not None:  # a commit still running when the fetch failed
            task, self._in_flight = self._in_flight, None
            await asyncio.gather(task, return_exceptions=True)
        self._handled = {}
        while not stop.is_set():
            await asyncio.sleep(pause)
            try:
                await self._acquire_lock()
                await self.runtime.reload()
                self.runtime.fence = await self.runtime.repository.claim()
                await self._seek_to_stored()
            except (SQLAlchemyError, OSError) as error:
                log.warning("recovery_waiting", error=str(error).splitlines()[0])
                pause = min(pause * 2, 5.0)
                continue
            log.info("recovered")
            return

    async def _schedule_recalculations(self, stop: asyncio.Event) -> None:
        """The periodic run: a RecalculateBackorders command published to the commands topic,
        so that it is in the log and a replay does the same. Only the active worker (the one
        holding the lock) runs this. The id names the period, so a worker restarted within
        the same period publishes a duplicate that the engine skips."""
        producer = AIOKafkaProducer(**self.kafka.client_options(), acks="all", enable_idempotence=True)
        await producer.start()
        try:
            period = self.recalc_every_seconds
            while not stop.is_set():
                now = time.time()
                slot = int(now // period)
                moment = datetime.fromtimestamp(slot * period, UTC)
                command = {
                    "specversion": "1.0",
                    "id": f"periodic-recalculation-{moment.isoformat().replace('+00:00', 'Z')}",
                    "source": "/backorders/recalculator/scheduler",
                    "type": "RecalculateBackorders",
                    "time": moment.isoformat().replace("+00:00", "Z"),
                    "data": {},
                }
                try:
                    await producer.send_and_wait(self.topics.commands, to_json(command).encode())
                    log.info("periodic_recalculation_published", id=command["id"])
                except KafkaError as error:  # the broker is away: the next period tries again
                    log.warning("periodic_recalculation_failed", id=command["id"], error=str(error))
                try:
                    await asyncio.wait_for(stop.wait(), (slot + 1) * period - time.time())
                except TimeoutError:
                    pass
        finally:
            await producer.stop()

    async def catch_up(self, until: dict[str, int] | None = None) -> None:
        """Handle records until every partition has reached `until` (end offsets; by default
        those of this moment), then return."""
        if until is None:
            partitions = list(self.consumer.assignment())
            ends = await self.consumer.end_offsets(partitions)
            until = {f"{tp.topic}:{tp.partition}": end for tp, end in ends.items()}
        self._handled = await self.runtime.repository.positions()
        while not all(self._handled.get(key, -1) + 1 >= end for key, end in until.items()):
            await self._step()
        await self._finish_commit()

    async def _report_lag(self) -> None:
        try:
            for key, value in (await self.lag()).items():
                metrics.LAG.labels(key).set(value)
        except (KafkaError, SQLAlchemyError, OSError):
            pass  # the next report will tell

    async def lag(self) -> dict[str, int]:
        """Records not yet handled, per `topic:partition`."""
        partitions = list(self.consumer.assignment())
        ends = await self.consumer.end_offsets(partitions)
        return lag_of(ends, await self.runtime.repository.positions())
