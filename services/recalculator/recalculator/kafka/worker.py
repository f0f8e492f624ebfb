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

Records are applied in the order `ordering.EventTimeMerge` decides: by event time across
every input partition, a record waiting until every partition has passed its time (or was
found empty), so the order depends on the topics' contents and not on how fetches happened
to interleave: a replay of the topics (`replay-topics`, `rebuild`) applies the same.

After a failed batch (the database or the broker went away) the worker returns to its last
commit: engine reloaded, lock and claim taken again, partitions sought back. It never exits
for an outage: starting, it waits for the database and the broker with backoff.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from backorder_events.topics import COMMANDS_KEY, InputTopics
from backorders_platform import locks, logs
from backorders_platform.database import FencedOut
from backorders_platform.kafka_settings import KafkaSettings
from sqlalchemy.exc import SQLAlchemyError
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from .. import metrics
from ..ordering import DEFAULT_IDLE_BOUND_MS, EventTimeMerge, topic_ranks
from ..processing import event_time, read
from ..publishing import to_json
from ..runtime.embedded import EmbeddedRuntime, Record

log = logs.get("recalculator.worker")

# What goes away and comes back: the worker waits for it instead of exiting.
OUTAGES = (KafkaError, SQLAlchemyError, OSError, FencedOut)
def lag_of(ends: dict[TopicPartition, int], stored: dict[str, int]) -> dict[str, int]:
    """Records not yet handled per `topic:partition`: end offset minus the offset after the
    last one stored with the state."""
    return {
        f"{tp.topic}:{tp.partition}": end - (stored.get(f"{tp.topic}:{tp.partition}", -1) + 1)
        for tp, end in sorted(ends.items(), key=lambda item: (item[0].topic, item[0].partition))
    }


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
        idle_bound_seconds: float = DEFAULT_IDLE_BOUND_MS / 1000,
        max_attempts: int = 3,
    ) -> None:
        self.schema = schema
        self.runtime = EmbeddedRuntime(url, schema=schema, batch_size=batch_size)
        self.kafka = kafka or KafkaSettings()
        self.topics = topics or InputTopics()
        self.batch_size = batch_size
        self.recalc_every_seconds = recalc_every_seconds
        # How long after records arrived a partition must still be found empty for them to
        # go past it (ordering.py): the skew between partitions of one producer's records.
        self.merge = EventTimeMerge(idle_bound_seconds)
        # A record whose batch failed this many times for an unexpected error (a bug, not
        # an outage) is dead-lettered on its own, with the traceback.
        self.max_attempts = max_attempts
        self.recoveries = 0
        self.linger_seconds = 0.0  # see _linger
        self.consumer: AIOKafkaConsumer | None = None
        self._lock_connection = None
        self._in_flight: asyncio.Task | None = None  # the commit of the last prepared batch
        self._handled: dict[str, int] = {}  # last offset prepared, per `topic:partition`
        self._partitions: dict[str, TopicPartition] = {}  # `topic:partition` → partition
        self._ranks = topic_ranks(self.topics)
        self._until: dict[str, int] | None = None  # a replay up to these end offsets
        # (lane, offset) → (failed attempts, the reason it is dead-lettered with at the last)
        self._failures: dict[tuple[str, int], tuple[int, str | None]] = {}
        self._paused: set[TopicPartition] = set()
        self._late_reported = 0

    async def start(self, *, reset: bool = False, stop: asyncio.Event | None = None) -> RecalculatorWorker:
        """Take the lock, claim the state, load it and seek; waits for the database and the
        broker while they are away (until `stop` is set). With `reset`, the stored state is
        emptied first (under the lock), so the topics are consumed again from the start."""
        async for attempt in _patiently(stop, "start_waiting"):
            with attempt:
                await self._start(reset)
        return self

    async def _start(self, reset: bool) -> None:
        await self._acquire_lock()
        repository = self.runtime.repository
        await self.runtime.prepare_storage()
        if reset:
            await repository.erase()
        # Claim first, then load: a deposed owner can write nothing after the claim, so the
        # state loaded is the one this worker goes on from.
        self.runtime.fence = await repository.claim()
        await self.runtime.reload()
        if self.consumer is None:
            consumer = AIOKafkaConsumer(
                **self.kafka.client_options(), group_id=None, enable_auto_commit=False,
                auto_offset_reset="earliest", max_partition_fetch_bytes=4 << 20,
            )
            try:
                await consumer.start()
            except BaseException:
                await _quietly(consumer.stop())  # its connections and tasks, before a retry
                raise
            self.consumer = consumer
        await self._assign_all()

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
                # Not an outage the worker can wait out silently, but not a reason to exit
                # either: topics may be created after the workers. Said, then waited for.
                log.error("input_topic_missing", topic=topic)
                raise MissingTopic(f"input topic {topic!r} does not exist")
            partitions.extend(TopicPartition(topic, p) for p in sorted(ids))
        self.consumer.assign(partitions)
        self._partitions = {f"{tp.topic}:{tp.partition}": tp for tp in partitions}
        await self._seek_to_stored()

    async def _seek_to_stored(self) -> None:
        """Every partition back to the record after the last one committed, and the merge
        back to the effective time each had reached."""
        stored = await self.runtime.repository.clock_positions()
        self.merge.clear()
        self._paused.clear()
        self.consumer.resume(*self._partitions.values())
        fresh = [tp for key, tp in self._partitions.items() if key not in stored]
        # One request for where the fresh partitions begin (seeking each to its beginning
        # waits for the fetcher, partition after partition).
        beginnings = await self.consumer.beginning_offsets(fresh) if fresh else {}
        for key, tp in sorted(self._partitions.items()):
            offset, clock = stored.get(key, (None, None))
            self.consumer.seek(tp, beginnings[tp] if offset is None else offset + 1)
            self.merge.add_lane(key, self._ranks[tp.topic], tp.partition, clock)
        self._handled = {key: offset for key, (offset, _) in stored.items()}
        log.info("assigned", partitions=len(self._partitions), resumed=len(stored))

    async def stop(self) -> None:
        try:
            await self._finish_commit()
        except OUTAGES as error:  # the next start resumes before it
            log.warning("last_commit_failed", error=_first_line(error))
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
        """Fetch what is there and apply what is ready as one batch, committed before
        returning; returns the number of records applied."""
        count = await self._step(timeout_ms)
        await self._finish_commit()
        return count

    async def _step(self, timeout_ms: int = 200) -> int:
        """Fetch, let the merge say which records' turn has come, prepare them as a batch,
        then start its commit once the previous batch's commit has succeeded. The engine
        works on batch n+1 while PostgreSQL writes batch n; commits stay in order, and a
        failed one stops the line (see `_recover`)."""
        waiting = self.merge.pending()
        if waiting >= self.batch_size:
            timeout_ms = 0
        elif waiting:  # no longer than until the records waiting may be let through
            timeout_ms = min(timeout_ms, int(self.merge.ready_in(time.monotonic()) * 1000))
        # More than a batch at a time: the merge needs every partition's next records to
        # know whose turn it is (flow control bounds what it holds).
        fetched = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=4 * self.batch_size)
        if self.linger_seconds and fetched:
            fetched = await self._linger(fetched)
        await self._offer(fetched)
        entries = self.merge.take(self.batch_size)
        if len(entries) < self.batch_size and self.merge.blocked:
            # Every partition, not only those the next instant waits for: the instant after
            # it may wait for others, and one request answers for all.
            await self._look_for_ends(list(self._partitions))
            entries += self.merge.take(self.batch_size - len(entries))
            if not entries and self.merge.blocked:
                # Nothing else to do: wait out the idle bound of the next instant's records
                # (while there was other work, time passed doing it instead).
                pause = self.merge.ready_in(time.monotonic())
                if pause:
                    await asyncio.sleep(pause)
                    await self._look_for_ends(list(self._partitions))
                    entries = self.merge.take(self.batch_size)
        self._flow_control()
        if not entries:
            await self._finish_commit()
            return 0
        records = [entry.record for entry in entries]
        batch = await self._prepare(records)
        await self._finish_commit()
        self._in_flight = asyncio.create_task(self.runtime.commit_batch(batch))
        self._handled.update(batch.positions)
        if self.merge.late > self._late_reported:
            log.warning("late_records", count=self.merge.late - self._late_reported,
                        stream_time=self.merge.stream_time, records=[
                            {"source": e.record.source, "partition": e.partition, "offset": e.offset,
                             "time": e.time} for e in self.merge.late_entries])
            self.merge.late_entries = []
            metrics.LATE_RECORDS.inc(self.merge.late - self._late_reported)
            self._late_reported = self.merge.late
        return len(records)

    async def _offer(self, fetched: dict) -> None:
        """Each record parsed (once: the runtime applies what was parsed) and offered to the
        merge. Parsing hands the event loop back every 50 records, so that the previous
        batch's commit progresses meanwhile."""
        received = time.monotonic()
        until = self._until
        count = 0
        for tp, messages in fetched.items():
            key = f"{tp.topic}:{tp.partition}"
            for message in messages:
                count += 1
                if count % 50 == 0:
                    await asyncio.sleep(0)
                if until is not None and message.offset >= until.get(key, 0):
                    break  # a replay stops at the offsets it was asked to reach
                parsed = read(message.value)
                clock = event_time(parsed)
                record = Record(tp.topic, message.offset, message.value, tp.partition, parsed)
                entry = self.merge.offer(key, message.offset, clock, message.key or b"", record, received)
                record.time = entry.time
            if until is not None and self._next_offset(key) >= until.get(key, 0):
                self.merge.end(key)

    def _next_offset(self, key: str) -> int:
        """The offset after the last record of the partition that the merge was offered."""
        lane = self.merge.lanes[key]
        if lane.pending:
            return lane.pending[-1].offset + 1
        return self._handled.get(key, -1) + 1

    async def _look_for_ends(self, lanes: list[str]) -> None:
        """The merge waits for partitions that may still hold earlier records: those with
        nothing fetched beyond what the merge holds are asked for their end offset, and
        found empty when it is reached (the idle bound is the merge's business)."""
        candidates = {}
        for key in lanes:
            tp = self._partitions[key]
            position = await self.consumer.position(tp)  # everything before it was offered
            highwater = self.consumer.highwater(tp)
            if highwater is not None and highwater > position:
                continue  # records are there to be fetched
            candidates[tp] = position
        if not candidates:
            return
        ends = await self.consumer.end_offsets(list(candidates))
        seen = time.monotonic()
        for tp, end in ends.items():
            if end <= candidates[tp]:
                self.merge.idle(f"{tp.topic}:{tp.partition}", seen)

    def _flow_control(self) -> None:
        """A partition whose records wait for others' (they are later than the instant the
        merge waits on) stops being fetched while it holds two batches' worth, so that
        memory stays bounded. One still inside that instant is fetched on: the instant is
        complete only once its end is seen."""
        upcoming = self.merge.next_time()
        for key, tp in self._partitions.items():
            lane = self.merge.lanes[key]
            held = len(lane.pending)
            waits_for_others = upcoming is not None and lane.time > upcoming
            if held >= 2 * self.batch_size and waits_for_others and tp not in self._paused:
                self.consumer.pause(tp)
                self._paused.add(tp)
            elif (held < self.batch_size or not waits_for_others) and tp in self._paused:
                self.consumer.resume(tp)
                self._paused.discard(tp)

    async def _prepare(self, records: list[Record]):
        """The batch's rows. An unexpected error (not bad input: that is dead-lettered by
        `process`) leaves the engine half way through an event: it is reloaded from the
        database, the batch is tried again, and a record that failed `max_attempts` times
        is dead-lettered on its own, with the traceback, instead of stopping its partition."""
        failures = self._failures

        def refuse(record: Record) -> str | None:
            attempts, reason = failures.get((record.position_key, record.position), (0, None))
            return reason if attempts >= self.max_attempts else None

        try:
            return await self.runtime.prepare_batch(records, yield_every=10, refuse=refuse if failures else None)
        except OUTAGES:
            raise
        except Exception as error:
            failing = self.runtime.failing
            if failing is None:
                raise
            place = (failing.position_key, failing.position)
            attempts = failures.get(place, (0, None))[0] + 1
            reason = (f"unexpected error after {attempts} attempts: {type(error).__name__}: "
                      f"{_first_line(error)}\n{traceback.format_exc()}")
            failures[place] = (attempts, reason)
            log.error("record_failed", source=failing.source, partition=failing.partition,
                      position=failing.position, attempt=attempts, error=_first_line(error))
            raise RecordFailed(failing, error) from error

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
                    # Nothing was applied: fetch again once the broker is back.
                    log.warning("fetch_failed", error=str(error))
                    await asyncio.sleep(0.5)
                    continue
                except (SQLAlchemyError, OSError, FencedOut, RecordFailed) as error:
                    log.error("batch_failed", error=_first_line(error))
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

    async def _recover(self, stop: asyncio.Event) -> None:
        """Back to the last commit after a failed batch (the database went away, or a record
        failed): the engine in memory is ahead of the database, so the lock and the claim
        are taken again (the lock went with the connection), the state loaded again, and
        every partition sought back to its stored offset."""
        if self._in_flight is not None:  # a commit still running when the fetch failed
            task, self._in_flight = self._in_flight, None
            await asyncio.gather(task, return_exceptions=True)
        self._handled = {}
        async for attempt in _patiently(stop, "recovery_waiting"):
            with attempt:
                await self._acquire_lock()
                self.runtime.fence = await self.runtime.repository.claim()
                await self.runtime.reload()
                await self._seek_to_stored()
        if not stop.is_set():
            log.info("recovered")

    async def _schedule_recalculations(self, stop: asyncio.Event) -> None:
        """The periodic run: a RecalculateBackorders command published to the commands topic,
        so that it is in the log and a replay does the same. Only the active worker (the one
        holding the lock) runs this. The id names the period, so a worker restarted within
        the same period publishes a duplicate that the engine skips. The broker may be away
        at any moment, the first one included: the task waits for it and never ends before
        the worker does."""
        period = self.recalc_every_seconds
        producer = None
        try:
            while not stop.is_set():
                slot = int(time.time() // period)
                moment = datetime.fromtimestamp(slot * period, UTC).isoformat().replace("+00:00", "Z")
                command = {
                    "specversion": "1.0",
                    "id": f"periodic-recalculation-{moment}",
                    "source": "/backorders/recalculator/scheduler",
                    "type": "RecalculateBackorders",
                    "time": moment,
                    "data": {},
                }
                while not stop.is_set():
                    try:
                        if producer is None:
                            producer = AIOKafkaProducer(
                                **self.kafka.client_options(), acks="all", enable_idempotence=True
                            )
                            await producer.start()
                        await producer.send_and_wait(self.topics.commands, to_json(command).encode(),
                                                     key=COMMANDS_KEY.encode())
                        log.info("periodic_recalculation_published", id=command["id"])
                        break
                    except KafkaError as error:  # the broker is away: tried again shortly
                        log.warning("periodic_recalculation_waiting", id=command["id"], error=str(error))
                        if producer is not None:
                            await _quietly(producer.stop())
                            producer = None
                        if await _stopped(stop, 2.0) or int(time.time() // period) != slot:
                            break
                await _stopped(stop, (slot + 1) * period - time.time())
        finally:
            if producer is not None:
                await _quietly(producer.stop())

    async def catch_up(self, until: dict[str, int] | None = None) -> None:
        """Apply records until every partition has reached `until` (end offsets; by default
        those of this moment), then return. Records beyond are not applied: the topics up to
        those offsets are a finite log, applied in the order a live worker gives it."""
        if until is None:
            ends = await self.consumer.end_offsets(list(self._partitions.values()))
            until = {f"{tp.topic}:{tp.partition}": end for tp, end in ends.items()}
        self._until = until
        try:
            self._handled = await self.runtime.repository.positions()
            for key in self._partitions:
                if self._handled.get(key, -1) + 1 >= until.get(key, 0):
                    self.merge.end(key)
            while not all(self._handled.get(key, -1) + 1 >= end for key, end in until.items()):
                await self._step()
            await self._finish_commit()
        finally:
            self._until = None

    async def _report_lag(self) -> None:
        try:
            for key, value in (await self.lag()).items():
                metrics.LAG.labels(key).set(value)
        except OUTAGES:
            pass  # the next report will tell

    async def lag(self) -> dict[str, int]:
        """Records not yet handled, per `topic:partition`."""
        partitions = list(self.consumer.assignment())
        ends = await self.consumer.end_offsets(partitions)
        return lag_of(ends, await self.runtime.repository.positions())


class MissingTopic(KafkaError):
    """An input topic the broker does not know (yet)."""


class RecordFailed(Exception):
    """A batch failed on one record for an unexpected reason (not bad input)."""

    def __init__(self, record: Record, error: BaseException) -> None:
        super().__init__(f"{record.position_key} offset {record.position}: {_first_line(error)}")
        self.record = record


def _patiently(stop: asyncio.Event | None, what: str) -> AsyncRetrying:
    """Retries of a step that needs the database and the broker: with growing pauses (up
    to 10 s, jittered) for as long as they are away, until `stop` is set."""

    def stopped(_state) -> bool:
        return stop is not None and stop.is_set()

    async def pause(seconds: float) -> None:
        await _stopped(stop, seconds)

    def said(state) -> None:
        log.warning(what, attempt=state.attempt_number, error=_first_line(state.outcome.exception()),
                    retry_in=round(state.next_action.sleep, 2))

    return AsyncRetrying(
        retry=retry_if_exception_type(OUTAGES), wait=wait_exponential_jitter(multiplier=0.5, max=10, jitter=0.5),
        stop=stopped, sleep=pause, before_sleep=said, reraise=True,
    )


async def _stopped(stop: asyncio.Event | None, seconds: float) -> bool:
    """Sleep `seconds`, or less when `stop` is set meanwhile; says whether it was."""
    if stop is None:
        await asyncio.sleep(max(seconds, 0))
        return False
    try:
        await asyncio.wait_for(stop.wait(), max(seconds, 0))
    except TimeoutError:
        return False
    return True


async def _quietly(awaitable) -> None:
    try:
        await awaitable
    except Exception:  # noqa: BLE001, S110 - closing what is already broken
        pass


def _first_line(error: BaseException | None) -> str:
    text = str(error) if error is not None else ""
    return (text.splitlines() or [type(error).__name__])[0]
