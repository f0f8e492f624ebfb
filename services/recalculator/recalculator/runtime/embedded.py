"""The embedded runtime: the recalculator in one process, fed from an in-process log, with
its state in SQL (SQLite by default).

Inputs are handled in batches; everything a batch produced is committed in one transaction
together with the processed event ids and the source position. A process killed at any
point restarts from the last commit: the position skips what was committed, the processed
ids skip anything seen again, and nothing in the lost batch was visible anywhere.

A log is applied in the order the Kafka worker would apply the same events from the topics
(`ordering.file_order`): by event time, then topic, key and log order. The position stored
for a log is a line (or the caller's number) up to which everything was handled.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from backorder_events import InvalidEvent
from backorders_platform import logs
from backorders_platform.database import make_engine

from .. import metrics
from ..adapters.repository import BatchRows, Pruned, Repository
from ..config import RetentionSettings
from ..domain.engine import Engine
from ..domain.results import HELD, REJECTED
from ..processing import Processed, Tally, process
from ..publishing import dead_letter
from .sequencing import in_log_order
from .tuning import freeze_loaded_state, unfreeze_for_reload

log = logs.get("recalculator.embedded")

DEFAULT_BATCH = 1000


class EmbeddedRuntime:
    def __init__(
        self,
        url: str,
        *,
        batch_size: int = DEFAULT_BATCH,
        schema: str | None = None,
        retention: RetentionSettings | None = None,
    ) -> None:
        self.url = url
        self.batch_size = batch_size
        # By default from the environment (BACKORDERS_DEDUPE_WINDOW, ...), so every runtime
        # built on this one (the Kafka worker, replay-topics, rebuild) applies the same.
        self.retention = retention or RetentionSettings()
        self.db = make_engine(url, schema)
        self.repository = Repository(self.db, schema)
        self.engine = self.new_engine()
        self.fence: str | None = None  # set by a runtime that must be the only writer
        # A connection the owner holds for writing batches (the Kafka worker's lock
        # connection): no pool checkout, no ping, per batch; None: pooled connections.
        self.connection: AsyncConnection | None = None
        self.failing: Record | None = None  # the record an unexpected error escaped from

    async def start(self) -> EmbeddedRuntime:
        await self.prepare_storage()
        await self.reload()
        return self

    async def prepare_storage(self) -> None:
        """The schema brought to the latest migration (a runtime with more tables adds
        them here)."""
        await self.repository.create_schema()

    def new_engine(self) -> Engine:
        return Engine(**self.retention.engine_options())

    async def reload(self) -> None:
        """The stored state, into a new engine (on start, and after a failed batch left the
        engine ahead of the database). The old engine is let go for good: it was kept out
        of the collector's reach, which would keep it in memory beside the new one."""
        unfreeze_for_reload()
        engine = self.new_engine()
        await self.repository.load(engine)
        self.engine = engine
        freeze_loaded_state()  # collects the old engine first

    async def prune(self) -> Pruned:
        """Delete the outbox rows and dead letters already relayed and older than their
        retention, in small transactions of their own (never part of a batch). The outbox
        relay does this every `prune_every_seconds`; a runtime without a relay has nothing
        relayed, so nothing to prune."""
        pruned = await self.repository.prune(
            self.retention.outbox_retention, self.retention.dead_letter_retention
        )
        if pruned.outbox or pruned.dead_letters:
            log.info("pruned", outbox=pruned.outbox, dead_letters=pruned.dead_letters)
        return pruned

    async def close(self) -> None:
        await self.db.dispose()

    async def __aenter__(self) -> EmbeddedRuntime:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def consume(
        self,
        source: str,
        records: Iterable[tuple[int, str | bytes]],
        *,
        track_position: bool = True,
        on_processed: Callable[[Processed], None] | None = None,
    ) -> Tally:
        """Handle the `(position, raw)` records of one log (a file line, or the caller's
        number), all of them read first, in the order of `in_log_order`. With
        `track_position`, records at or before the position stored for `source` are passed
        over; a batch is committed only where every record up to its furthest position has
        been handled (the order goes by time, not by position), so the stored position
        always means "all of these, and none after"."""
        tally = Tally()
        after = await self.repository.position(source) if track_position else None
        ordered = in_log_order((p, raw) for p, raw in records if after is None or p > after)
        positions = sorted(item.line for item in ordered)
        batch: list[Record] = []
        furthest, handled = None, 0
        for item in ordered:
            batch.append(Record(source, item.line, item.raw, parsed=item.parsed))
            furthest = item.line if furthest is None else max(furthest, item.line)
            handled += 1
            if len(batch) >= self.batch_size and bisect_right(positions, furthest) == handled:
                await self.handle_batch(batch, tally, track_position, on_processed)
                batch = []
        if batch:
            await self.handle_batch(batch, tally, track_position, on_processed)
        return tally

    async def handle_batch(
        self,
        records: list[Record],
        tally: Tally | None = None,
        track_position: bool = True,
        on_processed: Callable[[Processed], None] | None = None,
    ) -> Tally:
        """Process records (of one or more sources, each in order) and commit everything
        they produced in one transaction, with each source's last position."""
        tally = tally if tally is not None else Tally()
        batch = await self.prepare_batch(records, tally, track_position, on_processed)
        await self.commit_batch(batch)
        return tally

    async def prepare_batch(
        self,
        records: list[Record],
        tally: Tally | None = None,
        track_position: bool = True,
        on_processed: Callable[[Processed], None] | None = None,
        *,
        yield_every: int = 0,
        refuse: Callable[[Record], str | None] | None = None,
    ) -> PreparedBatch:
        """Run the records through the engine and take, as rows, everything they changed.
        The engine is then ahead of the database until `commit_batch` of these rows; with
        `yield_every`, control goes back to the event loop every so many records, so that
        the commit of the previous batch progresses meanwhile. `refuse` names records to
        dead-letter without applying them, with the reason it gives (records that failed
        for an unexpected error too often). An unexpected error leaves `failing` set to the
        record it came from."""
        tally = tally if tally is not None else Tally()
        started = time.perf_counter()
        before = (tally.applied, tally.duplicates, tally.dead_lettered, tally.outputs,
                  tally.held, tally.released, tally.held_dead_lettered)
        outputs: list[dict] = []
        dead = []
        positions: dict[str, int] = {}
        times: dict[str, int] = {}
        for count, record in enumerate(records, 1):
            self.failing = record
            reason = refuse(record) if refuse is not None else None
            if reason is not None:
                result = refused(record, reason)
            else:
                result = process(self.engine, record.raw, record.source, record.position,
                                 record.partition, record.parsed)
            tally.add(result)
            outputs.extend(result.outputs)
            if result.dead_letter is not None:
                dead.append(result.dead_letter)
                log.warning(
                    "dead_lettered", source=record.source, partition=record.partition,
                    position=record.position, event_id=result.event_id,
                    event_type=result.event_type, reason=result.reason,
                )
            elif result.status == HELD:
                log.info(
                    "held", source=record.source, partition=record.partition,
                    position=record.position, event_id=result.event_id,
                    event_type=result.event_type, reason=result.reason,
                )
            # Waiting actions this record settled: their outputs are in `result.outputs`,
            # the dead letters of those refused come after the record's own.
            for letter in result.held_dead_letters:
                dead.append(letter)
                log.warning(
                    "dead_lettered", source=letter.source, partition=letter.partition,
                    position=letter.position, event_id=letter.event_id,
                    event_type=letter.event_type, reason=letter.reason,
                )
            if on_processed is not None:
                on_processed(result)
            # Within an instant a partition's records may go by key, not by offset: the
            # position is the furthest one applied (all before it are in this batch or done).
            key = record.position_key
            if record.position > positions.get(key, -1):
                positions[key] = record.position
                if record.time is not None:
                    times[key] = record.time
            if yield_every and count % yield_every == 0:
                await asyncio.sleep(0)
        self.failing = None
        rows = self.repository.batch_rows(
            self.engine, self.engine.take_changes(), outputs, dead,
            positions if track_position else None, times,
        )
        counts = (
            tally.applied - before[0], tally.duplicates - before[1],
            tally.dead_lettered - before[2], tally.outputs - before[3],
            tally.held - before[4], tally.released - before[5],
            tally.held_dead_lettered - before[6],
        )
        return PreparedBatch(rows, len(records), positions, counts, started)

    async def commit_batch(self, batch: PreparedBatch) -> None:
        """Write a prepared batch in one transaction (fenced when this runtime has a fence)."""
        await self.repository.save_rows(batch.rows, fence=self.fence, conn=self.connection)
        elapsed = time.perf_counter() - batch.started
        applied, duplicates, dead_lettered, outputs, *waiting = batch.counts
        held, released, held_dead_lettered = waiting or (0, 0, 0)
        metrics.BATCH_SECONDS.observe(elapsed)
        metrics.RECALCULATION_SECONDS.observe(elapsed / batch.size)
        metrics.EVENTS.labels("applied").inc(applied)
        metrics.EVENTS.labels("duplicate").inc(duplicates)
        metrics.EVENTS.labels("dead_lettered").inc(dead_lettered)
        if held or released or held_dead_lettered:
            metrics.EVENTS.labels("held").inc(held)
            metrics.HELD_SETTLED.labels("applied").inc(released)
            metrics.HELD_SETTLED.labels("dead_lettered").inc(held_dead_lettered)
        metrics.DEAD_LETTERS.inc(dead_lettered + held_dead_lettered)
        metrics.PUBLISHED.inc(outputs)
        log.info(
            "batch_committed", positions=batch.positions, applied=len(batch.rows.processed),
            published=len(batch.rows.outbox), dead_lettered=len(batch.rows.dead_letters),
        )


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """What one batch of records changed, as rows ready to be written."""

    rows: BatchRows
    size: int
    positions: dict[str, int]
    # applied, duplicates, dead-lettered, outputs, and (where actions may be held) held,
    # held actions applied later, held actions dead-lettered later
    counts: tuple[int, ...]
    started: float


@dataclass(slots=True)
class Record:
    """One raw input and where it came from: a topic partition offset, or a file line."""

    source: str
    position: int
    raw: str | bytes
    partition: int | None = None
    parsed: object = None  # what `processing.read` gave, when the runtime read it already
    time: int | None = None  # its effective time in the merge (ordering.py), µs

    @property
    def position_key(self) -> str:
        return self.source if self.partition is None else f"{self.source}:{self.partition}"


def refused(record: Record, reason: str) -> Processed:
    """A record dead-lettered without being applied (it failed for an unexpected error too
    often to be tried again)."""
    parsed = record.parsed
    if isinstance(parsed, InvalidEvent):
        event_id, event_type = parsed.event_id, parsed.event_type
    elif parsed is not None:
        event_id, event_type = parsed.id, parsed.type
    else:
        event_id = event_type = None
    letter = dead_letter(record.raw, reason, record.source, record.position, event_id=event_id,
                         event_type=event_type, partition=record.partition)
    return Processed(REJECTED, event_id, event_type, dead_letter=letter, reason=reason)
