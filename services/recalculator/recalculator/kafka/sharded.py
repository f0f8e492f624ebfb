"""The SKU-sharded recalculator on Kafka and PostgreSQL (docs/sharding.md).

Three stages, each the pure part of `domain/` wrapped in batch transactions:
- the router (one active, like the single worker: lock, fence, stored offsets) reads the
  input topics, validates and dead-letters, and writes each accepted event's records for
  the SKU shards into `routed`, with the event's `causes` row;
- SKU shards (each held by one worker at a time; the live workers share them out) apply
  their `routed` rows, delete them in the same transaction, and write their order partials
  and their SKUs' ProductBackorderChanged/SkuPositionChanged (to their own outbox);
- the assembler (one active) takes causes in order once no shard has work left at or
  before them, and writes BackorderChanged to its outbox.
Every stage keeps its state in its own schema; the hand-over tables live in the pipeline
schema, reached through the search path, so each hand-over is written in the transaction
of the state it came from. Each stage's outbox is relayed to Kafka by whoever holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime

from aiokafka.errors import KafkaError
from backorder_events import DeadLetter, InvalidEvent
from backorder_events.topics import InputTopics, OutputTopics
from backorders_platform import locks, logs, schema_names
from backorders_platform.database import FencedOut, make_engine, upsert
from backorders_platform.kafka_settings import KafkaSettings
from sqlalchemy import and_, delete, func, select, text
from sqlalchemy.engine import Result
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..adapters import pipeline_tables as pt
from ..adapters import tables as t
from ..adapters.migrate import PIPELINE
from ..adapters.repository import BatchRows, Repository, _append, _chunks, outbox_row
from ..adapters.shard_codec import (
    decode_handoff,
    decode_partial,
    decode_record,
    encode_handoff,
    encode_partial,
    encode_record,
    handoff_key,
)
from ..domain.assembler import AssembledOrder, Assembler
from ..domain.engine import COMMAND_TYPES
from ..domain.model import to_us
from ..domain.results import APPLIED, DUPLICATE, PartialLine
from ..domain.router import Router
from ..domain.shard_engine import ShardEngine
from ..domain.sharded import apply_record, reason_of
from ..domain.sharding import AcquireSkus, ArriveLine, DepartLine, ReleaseSkus
from ..processing import Processed, Tally, read
from ..publishing import dead_letter, order_event, output_events
from ..runtime.embedded import EmbeddedRuntime, PreparedBatch, refused
from .relay import OutboxRelay
from .worker import RecalculatorWorker

log = logs.get("recalculator.sharded")

LIVE_SECONDS = 3.0  # a worker not seen for this long has left; its shards are shared out
TICK_SECONDS = 0.5
# A stage that found only a little work waits this long for more before its next batch:
# every batch is a transaction, and batches of a few records would spend the time on those.
LINGER_SECONDS = 0.03


def router_schema(base: str) -> str:
    return f"{base}_router"


def shard_schema(base: str, shard: int) -> str:
    return f"{base}_shard{shard}"


def assembler_schema(base: str) -> str:
    return f"{base}_assembler"


@contextlib.asynccontextmanager
async def claimed_snapshot(repository: Repository) -> AsyncIterator[tuple[str, AsyncConnection]]:
    """Claim a stage's state (a fresh fence), then yield the fence and a connection in one
    REPEATABLE READ transaction to read the state with. In that order: once the claim is
    committed no earlier owner can write, so the snapshot read after it holds everything an
    earlier owner committed and nothing can change under it. Read first and claimed after,
    a deposed owner still believing it holds the stage could commit a batch in between,
    and the stage would work from a state that misses it."""
    fence = await repository.claim()
    async with repository.db.connect() as conn:
        await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            yield fence, conn


async def migrate_stage(url: str, schema: str) -> None:
    """A stage's own state tables, migrated through a connection that sees only its schema."""
    db = make_engine(url, schema)
    try:
        await Repository(db, schema).create_schema()
    finally:
        await db.dispose()


async def setup_pipeline(url: str, base: str, shards: int) -> None:
    """The hand-over tables, and the shard count, fixed for the life of the state: shards
    own SKUs by a hash modulo that count."""
    db = make_engine(url, base)
    try:
        await PIPELINE.upgrade(db, base)
        async with db.begin() as conn:
            stored = (await conn.execute(
                select(pt.pipeline_meta.c.value).where(pt.pipeline_meta.c.key == "shards")
            )).scalar()
            if stored is None:
                await upsert(conn, pt.pipeline_meta, [{"key": "shards", "value": str(shards)}], ["key"])
            elif int(stored) != shards:
                raise ValueError(
                    f"the state in schema {base!r} was built with {stored} shards, not {shards}: "
                    "rebuild it (backorders rebuild) to change the count"
                )
    finally:
        await db.dispose()


# -- router -----------------------------------------------------------------------------------


class RouterRuntime(EmbeddedRuntime):
    """The router as a batch runtime for `RecalculatorWorker`: same positions, fence and
    dead letters; its 'outputs' are the shards' records."""

    def __init__(self, url: str, base: str, shards: int, *, batch_size: int = 1000) -> None:
        super().__init__(url, batch_size=batch_size, schema=router_schema(base))
        self.base = base
        self.shards = shards
        self.db = make_engine(url, self.repository.schema, also=base)
        self.repository = Repository(self.db, self.repository.schema)
        self.router = Router(shards, **self.retention.engine_options())
        self.engine = self.router.engine
        self.seq = 0

    async def prepare_storage(self) -> None:
        await setup_pipeline(self.url, self.base, self.shards)
        await migrate_stage(self.url, self.repository.schema)

    async def reload(self) -> None:
        """The router's state, read after claiming it (`claimed_snapshot`). The worker
        claims it once more after this; a second claim by the same process changes
        nothing."""
        router = Router(self.shards, **self.retention.engine_options())
        async with claimed_snapshot(self.repository) as (fence, conn):
            await self.repository.load(router.engine, conn)
            for row in await conn.execute(select(pt.order_shards)):
                router.known[row.order_id] = {int(s) for s in row.shards.split(",") if s}
            router.groups.load(dict((await conn.execute(select(pt.sku_groups.c.sku, pt.sku_groups.c.root))).all()))
            seq = (await conn.execute(
                select(pt.pipeline_meta.c.value).where(pt.pipeline_meta.c.key == "router_seq")
            )).scalar()
        self.router, self.engine = router, router.engine
        self.seq = int(seq or 0)
        self.fence = fence

    async def prepare_batch(self, records, tally=None, track_position=True, on_processed=None,
                            *, yield_every: int = 0, refuse=None) -> PreparedBatch:
        tally = tally if tally is not None else Tally()
        started = time.perf_counter()
        before = (tally.applied, tally.duplicates, tally.dead_lettered)
        causes, routed, dead = [], [], []
        positions: dict[str, int] = {}
        times: dict[str, int] = {}
        for count, record in enumerate(records, 1):
            key = record.position_key  # the furthest applied: an instant goes by key
            if record.position > positions.get(key, -1):
                positions[key] = record.position
                if record.time is not None:
                    times[key] = record.time
            self.failing = record
            reason = refuse(record) if refuse is not None else None
            if reason is not None:
                processed = refused(record, reason)
                dead.append(processed.dead_letter)
                tally.add(processed)
                continue
            event = record.parsed if record.parsed is not None else read(record.raw)
            if isinstance(event, InvalidEvent):
                error = event
                letter = DeadLetter.from_error(
                    record.raw, error, record.source, record.position, record.partition
                )
                dead.append(letter)
                tally.add(Processed("rejected", error.event_id, error.event_type, dead_letter=letter))
                log.warning("dead_lettered", source=record.source, partition=record.partition,
                            position=record.position, reason=error.reason)
                continue
            result = self.router.route(event)
            if result.status == APPLIED:
                self.seq += 1
                causes.append({
                    "seq": self.seq, "cause_id": event.id, "cause_type": event.type,
                    "time": event.model_dump(mode="json", include={"time"})["time"],
                    "publish": result.publish,
                })
                for idx, (shard, item) in enumerate(result.records):
                    routed.append({
                        "seq": self.seq, "idx": idx, "shard": shard, "cause_id": event.id,
                        "payload": encode_record(item, record.raw),
                    })
                tally.add(Processed(APPLIED, event.id, event.type))
            elif result.status == DUPLICATE:
                tally.add(Processed(DUPLICATE, event.id, event.type, reason=result.reason))
            else:
                letter = dead_letter(
                    record.raw, result.reason, record.source, record.position,
                    event_id=event.id, event_type=event.type, partition=record.partition,
                )
                dead.append(letter)
                tally.add(Processed("rejected", event.id, event.type, dead_letter=letter,
                                    reason=result.reason))
                log.warning("dead_lettered", source=record.source, partition=record.partition,
                            position=record.position, event_id=event.id, reason=result.reason)
            if yield_every and count % yield_every == 0:
                await asyncio.sleep(0)
        self.failing = None
        rows = self.repository.batch_rows(
            self.engine, self.engine.take_changes(), [], dead, positions if track_position else None, times
        )
        router = self.router
        known = [
            {"order_id": o, "shards": ",".join(map(str, sorted(router.known[o])))}
            for o in sorted(router.changed_orders) if o in router.known
        ]
        # Orders changed but no longer known were evicted (closed orders past their retention).
        forgotten = [o for o in sorted(router.changed_orders) if o not in router.known]
        groups = [{"sku": s, "root": router.groups.parent[s]} for s in sorted(router.groups.changed)]
        router.changed_orders = set()
        router.groups.changed = set()
        seq = self.seq

        async def hand_over(conn) -> None:
            if causes:
                await _append(conn, pt.causes, causes)
            if routed:
                await _append(conn, pt.routed, routed)
            await upsert(conn, pt.order_shards, known, ["order_id"])
            for chunk in _chunks(forgotten):
                await conn.execute(delete(pt.order_shards).where(pt.order_shards.c.order_id.in_(chunk)))
            await upsert(conn, pt.sku_groups, groups, ["sku"])
            await upsert(conn, pt.pipeline_meta, [{"key": "router_seq", "value": str(seq)}], ["key"])

        rows.extra.append(hand_over)
        counts = (tally.applied - before[0], tally.duplicates - before[1],
                  tally.dead_lettered - before[2], len(routed))
        return PreparedBatch(rows, len(records), positions, counts, started)


class RouterWorker(RecalculatorWorker):
    def __init__(self, url: str, base: str, shards: int, **options) -> None:
        super().__init__(url, schema=router_schema(base), **options)
        self.runtime = RouterRuntime(url, base, shards, batch_size=self.batch_size)
        self.linger_seconds = LINGER_SECONDS


# -- a SKU shard ---------------------------------------------------------------------------------


class _Stage:
    """What a shard and the assembler share: a lock held on its own connection, a fence on
    the state, an outbox relayed by the holder, and the loop that applies batches and returns
    to the last commit when one fails."""

    kind: str  # "shard" or "assembler": names the log events
    db: AsyncEngine
    relay: OutboxRelay
    batch_size: int
    _lock: AsyncConnection | None
    _reader: AsyncConnection | None = None  # the lock's connection once set to autocommit

    def _fields(self) -> dict:
        return {}

    async def _read(self, statement) -> Result:
        """A read between batches. It goes over the lock's connection in autocommit: one
        round trip, where a pooled connection would cost a checkout (which pings the server
        first), a BEGIN and a ROLLBACK. Should that connection have died, the read fails and
        the stage recovers, taking the lock again on a new one. (Stages run on PostgreSQL
        only, so a stage that runs holds its lock.)"""
        if self._reader is not self._lock:  # a lock taken (again) since the last read
            self._reader = await self._lock.execution_options(isolation_level="AUTOCOMMIT")
        return await self._lock.execute(statement)

    async def reload(self) -> None:
        raise NotImplementedError

    async def _take_lock_again(self) -> bool:
        """False when another worker holds it now (a shard); the assembler waits for it."""
        raise NotImplementedError

    async def stop(self) -> None:
        await self.relay.stop()
        await locks.release(self._lock)
        self._lock = None
        await self.db.dispose()
        log.info(f"{self.kind}_released", **self._fields())

    async def _recover(self, stop: asyncio.Event, leave: asyncio.Event) -> bool:
        """Back to the last commit after a failed batch. The lock may have gone with its
        connection (the database restarted), so it is taken again first; False when the
        worker stops, the stage is to leave, or another worker took it meanwhile."""
        pause = 0.5
        while not stop.is_set() and not leave.is_set():
            await asyncio.sleep(pause)
            try:
                await locks.release(self._lock)
                self._lock = None
                if not await self._take_lock_again():
                    log.warning(f"{self.kind}_lost", **self._fields())
                    return False
                await self.reload()
                log.info(f"{self.kind}_recovered", **self._fields())
                return True
            except (SQLAlchemyError, OSError) as error:
                log.warning(f"{self.kind}_recovery_waiting", error=str(error).splitlines()[0], **self._fields())
                pause = min(pause * 2, 5.0)
        return False

    async def _run(self, step, stop: asyncio.Event, leave: asyncio.Event) -> None:
        relay = asyncio.create_task(relay_until(self.relay, stop))
        try:
            while not stop.is_set() and not leave.is_set():
                try:
                    count = await step()
                except (SQLAlchemyError, OSError, FencedOut) as error:
                    log.error(f"{self.kind}_batch_failed", error=str(error).splitlines()[0], **self._fields())
                    if not await self._recover(stop, leave):
                        return  # stopping, leaving, or another worker holds it now
                    continue
                if count < self.batch_size // 2:
                    await asyncio.sleep(LINGER_SECONDS if count else 0.02)
        finally:
            relay.cancel()
            await asyncio.gather(relay, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self.relay.relay_rest_if_holding()


class ShardStage(_Stage):
    """One SKU shard, held by this worker while it holds the shard's lock."""

    kind = "shard"

    def __init__(self, url: str, base: str, shard: int, *, batch_size: int = 1000,
                 kafka: KafkaSettings | None = None, topics: OutputTopics | None = None) -> None:
        self.url, self.base, self.shard = url, base, shard
        self.schema = shard_schema(base, shard)
        self.batch_size = batch_size
        self.db = make_engine(url, self.schema, also=base)
        self.repository = Repository(self.db, self.schema)
        self.engine = ShardEngine()
        self.fence: str | None = None
        self.relay = OutboxRelay(self.repository, kafka, topics)
        self._lock = None
        self.applied = 0

    async def try_start(self) -> bool:
        taken, self._lock = await locks.try_hold(self.db, locks.key("shard", self.schema))
        if not taken:
            return False
        try:
            await migrate_stage(self.url, self.schema)
            await self.reload()
            await self.relay.start()
        except BaseException:
            await locks.release(self._lock)
            self._lock = None
            raise
        log.info("shard_taken", shard=self.shard)
        return True

    def _fields(self) -> dict:
        return {"shard": self.shard}

    async def reload(self) -> None:
        """The shard's state, read after claiming it (`claimed_snapshot`)."""
        engine = ShardEngine()
        async with claimed_snapshot(self.repository) as (fence, conn):
            await self.repository.load(engine, conn)
        self.engine, self.fence = engine, fence

    async def _fetch(self) -> list:
        query = (
            select(pt.routed.c.seq, pt.routed.c.idx, pt.routed.c.cause_id, pt.routed.c.payload,
                   pt.causes.c.time)
            .join(pt.causes, pt.causes.c.seq == pt.routed.c.seq)
            .where(pt.routed.c.shard == self.shard)
            .order_by(pt.routed.c.seq, pt.routed.c.idx)
            .limit(self.batch_size)
        )
        return (await self._read(query)).all()

    async def _handoff(self, seq: int, key: str) -> str | None:
        return (await self._read(
            select(pt.handoffs.c.payload).where(pt.handoffs.c.seq == seq, pt.handoffs.c.key == key)
        )).scalar()

    async def step(self, stop: asyncio.Event, leave: asyncio.Event | None = None) -> int:
        """Apply the next rows routed here and commit them; returns how many. A row that
        waits for another shard's hand-over first commits what came before it (that shard
        may be waiting for one of those), then waits, unless the worker stops or the shard
        is to leave: the shard it waits for may be the one its worker must take up first."""
        rows = await self._fetch()
        done, pending = 0, _ShardBatch()
        for row in rows:
            item = decode_record(row.payload)
            if isinstance(item, ArriveLine | AcquireSkus):
                key = handoff_key(item)
                payload = await self._handoff(row.seq, key)
                while payload is None:
                    if pending.rows:
                        await self._commit(pending)
                        done, pending = done + len(pending.rows), _ShardBatch()
                    if stop.is_set() or (leave is not None and leave.is_set()):
                        return done
                    await asyncio.sleep(0.02)
                    payload = await self._handoff(row.seq, key)
                handoff = decode_handoff(payload)
                if isinstance(item, ArriveLine):
                    item = replace(item, handoff=handoff)
                else:
                    item = replace(item, exports=handoff)
                pending.taken.append((row.seq, key))
            moment = datetime.fromisoformat(row.time)
            outcome = apply_record(self.engine, item, row.cause_id, to_us(moment))
            if isinstance(item, DepartLine | ReleaseSkus):
                pending.handoffs.append(
                    {"seq": row.seq, "key": handoff_key(item), "payload": encode_handoff(outcome.handoff)}
                )
            for partial in outcome.partials:
                pending.partials.append({"seq": row.seq, "shard": self.shard,
                                         "order_id": partial.order_id, "payload": encode_partial(partial)})
            pending.outputs.extend(output_events(outcome, row.cause_id, moment))
            pending.rows.append((row.seq, row.idx))
        if pending.rows:
            await self._commit(pending)
            done += len(pending.rows)
        self.applied += done
        return done

    async def _commit(self, batch: _ShardBatch) -> None:
        rows = self.repository.batch_rows(self.engine, self.engine.take_changes(), batch.outputs, [])
        shard = self.shard
        last_seq, last_idx = batch.rows[-1]

        async def hand_over(conn) -> None:
            # This shard's routed rows are read in (seq, idx) order, so everything up to the
            # last one applied goes.
            await conn.execute(delete(pt.routed).where(
                pt.routed.c.shard == shard,
                (pt.routed.c.seq < last_seq) | and_(pt.routed.c.seq == last_seq, pt.routed.c.idx <= last_idx),
            ))
            for seq, key in batch.taken:
                await conn.execute(delete(pt.handoffs).where(pt.handoffs.c.seq == seq, pt.handoffs.c.key == key))
            if batch.handoffs:
                await _append(conn, pt.handoffs, batch.handoffs)
            if batch.partials:
                await _append(conn, pt.partials, batch.partials)

        rows.extra.append(hand_over)
        await self.repository.save_rows(rows, fence=self.fence)

    async def _take_lock_again(self) -> bool:
        taken, self._lock = await locks.try_hold(self.db, locks.key("shard", self.schema))
        return taken

    async def run(self, stop: asyncio.Event, leave: asyncio.Event) -> None:
        """Apply and relay until `stop` (the worker ends) or `leave` (the shard goes to
        another worker); a failed batch returns to the last commit."""
        await self._run(lambda: self.step(stop, leave), stop, leave)


async def relay_until(relay: OutboxRelay, stop: asyncio.Event, wake: asyncio.Event | None = None,
                      idle_seconds: float = 0.2) -> None:
    """A stage's relay, riding out the database or the broker going away: it resumes from
    its stored position (at least once, ids stable)."""
    while not stop.is_set():
        try:
            await relay.run(stop, idle_seconds, wake)
        except (SQLAlchemyError, OSError, KafkaError) as error:
            log.warning("relay_failed", error=str(error).splitlines()[0] if str(error) else repr(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


class _ShardBatch:
    __slots__ = ("handoffs", "outputs", "partials", "rows", "taken")

    def __init__(self) -> None:
        self.rows: list[tuple[int, int]] = []
        self.outputs: list[dict] = []
        self.partials: list[dict] = []
        self.handoffs: list[dict] = []
        self.taken: list[tuple[int, str]] = []


# -- assembler ----------------------------------------------------------------------------------


def assembled_row(order_id: str, order: AssembledOrder) -> dict:
    """An assembled order as a row of `assembled_orders`."""
    return {
        "order_id": order_id, "company_id": order.company_id, "status": order.status,
        "doc": json.dumps({
            "published": order.published,
            "dates": order.published_dates,
            "by_shard": {str(s): [list(line) for line in lines] for s, lines in order.by_shard.items()},
        }, separators=(",", ":")),
    }


def assembled_order(row) -> AssembledOrder:
    """An assembled order as stored (`assembled_row`)."""
    order = AssembledOrder(row.company_id)
    doc = json.loads(row.doc)
    order.status = row.status
    order.published = doc["published"]
    order.published_dates = doc.get("dates", {})
    order.by_shard = {
        int(shard): tuple(PartialLine(*line) for line in lines) for shard, lines in doc["by_shard"].items()
    }
    return order


class AssemblerStage(_Stage):
    """The order-level stage: one active, by lock."""

    kind = "assembler"

    def __init__(self, url: str, base: str, *, batch_size: int = 2000,
                 kafka: KafkaSettings | None = None, topics: OutputTopics | None = None) -> None:
        self.url, self.base = url, base
        self.schema = assembler_schema(base)
        self.batch_size = batch_size
        self.db = make_engine(url, self.schema, also=base)
        self.repository = Repository(self.db, self.schema)
        self.assembler = Assembler()
        self.fence: str | None = None
        self.relay = OutboxRelay(self.repository, kafka, topics)
        self._lock = None
        # Its business clock: the newest time of the input events assembled (not commands).
        self.clock: int | None = None

    async def start(self) -> AssemblerStage:
        self._lock = await locks.hold(self.db, locks.key("assembler", self.schema))
        await migrate_stage(self.url, self.schema)
        await self.reload()
        await self.relay.start()
        return self

    async def reload(self) -> None:
        """The assembled orders, read after claiming the assembler's state
        (`claimed_snapshot`)."""
        assembler = Assembler()
        async with claimed_snapshot(self.repository) as (fence, conn):
            result = await conn.stream(select(pt.assembled_orders))
            async for row in result:
                assembler.orders[row.order_id] = assembled_order(row)
            clock = (await conn.execute(select(t.meta.c.value).where(t.meta.c.key == "clock"))).scalar()
        self.assembler, self.fence = assembler, fence
        self.clock = int(clock) if clock else None

    async def step(self) -> int:
        # Causes at or before the least seq some shard still has to apply are complete (a
        # shard deletes its routed rows in the transaction that writes their partials).
        frontier = (await self._read(text(
            "SELECT coalesce((SELECT min(seq) FROM routed) - 1, (SELECT max(seq) FROM causes))"
        ))).scalar()
        if frontier is None:
            return 0
        causes = (await self._read(
            select(pt.causes).where(pt.causes.c.seq <= frontier)
            .order_by(pt.causes.c.seq).limit(self.batch_size)
        )).all()
        if not causes:
            return 0
        last = causes[-1].seq
        partial_rows = (await self._read(
            select(pt.partials).where(pt.partials.c.seq <= last)
            .order_by(pt.partials.c.seq, pt.partials.c.shard, pt.partials.c.order_id)
        )).all()
        by_seq: dict[int, list] = {}
        for row in partial_rows:
            by_seq.setdefault(row.seq, []).append((row.shard, decode_partial(row.order_id, row.payload)))
        outputs, touched = [], set()
        clock = self.clock
        for cause in causes:
            partials = by_seq.get(cause.seq, [])
            touched.update(partial.order_id for _, partial in partials)
            for change in self.assembler.assemble(
                cause.cause_id, reason_of(cause.cause_type), partials, cause.publish
            ):
                outputs.append(order_event(change, cause.time))
            if cause.cause_type not in COMMAND_TYPES:
                moment = to_us(datetime.fromisoformat(cause.time))
                clock = moment if clock is None or moment > clock else clock
        self.clock = clock
        orders = self.assembler.orders
        # Orders touched but gone were evicted by their shards (closed, past their retention).
        forgotten = sorted(order_id for order_id in touched if order_id not in orders)
        touched.difference_update(forgotten)
        saved = [assembled_row(order_id, orders[order_id]) for order_id in sorted(touched)]
        rows = BatchRows(outbox=[outbox_row(output) for output in outputs], clock=clock)
        if clock is not None:
            rows.meta.append({"key": "clock", "value": str(clock)})

        async def hand_over(conn) -> None:
            await conn.execute(delete(pt.partials).where(pt.partials.c.seq <= last))
            await conn.execute(delete(pt.causes).where(pt.causes.c.seq <= last))
            await upsert(conn, pt.assembled_orders, saved, ["order_id"])
            for chunk in _chunks(forgotten):
                await conn.execute(delete(pt.assembled_orders).where(pt.assembled_orders.c.order_id.in_(chunk)))

        rows.extra.append(hand_over)
        await self.repository.save_rows(rows, fence=self.fence)
        return len(causes)

    async def _take_lock_again(self) -> bool:
        self._lock = await locks.hold(self.db, locks.key("assembler", self.schema))
        return True

    async def run(self, stop: asyncio.Event) -> None:
        await self._run(self.step, stop, asyncio.Event())


# -- one worker process ---------------------------------------------------------------------------


class ShardedWorker:
    """One process of the sharded recalculator. Every worker offers to be the router and the
    assembler (one of each is active; the others wait on the lock) and takes its share of
    the shards: the live workers, by id, take shard p when p % count == their rank."""

    def __init__(
        self,
        url: str,
        *,
        base: str,
        shards: int,
        kafka: KafkaSettings | None = None,
        topics: InputTopics | None = None,
        outputs: OutputTopics | None = None,
        batch_size: int = 1000,
        recalc_every_seconds: float = 0,
        worker_id: str | None = None,
    ) -> None:
        self.url, self.base, self.shards = url, base, shards
        self.kafka = kafka or KafkaSettings()
        self.topics = topics or InputTopics()
        self.outputs = outputs or OutputTopics()
        self.batch_size = batch_size
        self.recalc_every_seconds = recalc_every_seconds
        self.worker_id = worker_id or uuid.uuid4().hex
        all_schemas(base, shards)  # every stage's schema name checked
        self.held: dict[int, tuple[ShardStage, asyncio.Event, asyncio.Task]] = {}
        self.db = make_engine(url, base)
        self.roles: set[str] = set()

    async def run(self, stop: asyncio.Event) -> None:
        await setup_pipeline(self.url, self.base, self.shards)
        with locks.waits_end_with(stop):  # a role waiting for its lock stops waiting with the worker
            tasks = [
                asyncio.create_task(_again("router", self._router, stop)),
                asyncio.create_task(_again("assembler", self._assembler, stop)),
                asyncio.create_task(_again("sharing", self._share_shards, stop)),
            ]
        try:
            await stop.wait()
        finally:
            # The stages end at their next batch boundary; a stage still waiting on a lock
            # is cancelled.
            await asyncio.wait(tasks, timeout=15)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._release_all()
            with contextlib.suppress(SQLAlchemyError, OSError):
                async with self.db.begin() as conn:
                    await conn.execute(delete(pt.workers).where(pt.workers.c.worker_id == self.worker_id))
            await self.db.dispose()

    async def _router(self, stop: asyncio.Event) -> None:
        worker = RouterWorker(self.url, self.base, self.shards, kafka=self.kafka, topics=self.topics,
                              batch_size=self.batch_size, recalc_every_seconds=self.recalc_every_seconds)
        relay = OutboxRelay(worker.runtime.repository, self.kafka, self.outputs)
        try:
            await worker.start()  # waits on the router lock
            self.roles.add("router")
            await relay.start()
            relaying = asyncio.create_task(relay_until(relay, stop))
            try:
                await worker.run(stop)
            finally:
                relaying.cancel()
                await asyncio.gather(relaying, return_exceptions=True)
        finally:
            self.roles.discard("router")
            await relay.stop()
            await worker.stop()

    async def _assembler(self, stop: asyncio.Event) -> None:
        stage = AssemblerStage(self.url, self.base, kafka=self.kafka, topics=self.outputs)
        try:
            await stage.start()
            self.roles.add("assembler")
            await stage.run(stop)
        finally:
            self.roles.discard("assembler")
            await stage.stop()

    async def _heartbeat(self) -> list[tuple[str, str]]:
        """Say this worker is alive (and whether it routes); returns the live workers and
        their roles, by id."""
        roles = "router" if "router" in self.roles else ""
        async with self.db.begin() as conn:
            now = await database_micros(conn)
            await upsert(conn, pt.workers, [{"worker_id": self.worker_id, "seen_at": now, "roles": roles}],
                         ["worker_id"])
            return await live_workers(conn, now)

    def wanted(self, live: list[tuple[str, str]]) -> set[int]:
        """The shards this worker should hold: shard p goes to the holder of rank p mod n
        among the live workers, leaving out the one that routes while there are others
        (routing every input is a worker's worth of work on its own)."""
        holders = [worker for worker, roles in live if "router" not in roles] or [w for w, _ in live]
        if self.worker_id not in holders:
            return set() if live else set(range(self.shards))
        rank = holders.index(self.worker_id)
        return {p for p in range(self.shards) if p % len(holders) == rank}

    async def _share_shards(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                wanted = self.wanted(await self._heartbeat())
                for shard in sorted(set(self.held) - wanted):
                    await self._release(shard)
                for shard in sorted(wanted - set(self.held)):
                    stage = ShardStage(self.url, self.base, shard, batch_size=self.batch_size,
                                       kafka=self.kafka, topics=self.outputs)
                    if await stage.try_start():
                        leave = asyncio.Event()
                        self.held[shard] = (stage, leave, asyncio.create_task(stage.run(stop, leave)))
                    else:
                        await stage.db.dispose()
            except (SQLAlchemyError, OSError) as error:
                log.warning("sharing_failed", error=str(error).splitlines()[0])
            for shard, (_, _, task) in list(self.held.items()):
                if task.done():  # ended by an error it could not get past
                    error = task.exception() if not task.cancelled() else None
                    log.error("shard_failed", shard=shard, error=repr(error))
                    await self._release(shard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TICK_SECONDS)

    async def _release(self, shard: int) -> None:
        stage, leave, task = self.held.pop(shard)
        leave.set()
        await asyncio.gather(task, return_exceptions=True)
        await stage.stop()

    async def _release_all(self) -> None:
        for shard in list(self.held):
            await self._release(shard)


async def database_micros(conn) -> int:
    """The database's clock, in microseconds: every worker's heartbeat is judged by it, not
    by the clocks of the workers' machines."""
    return (await conn.execute(text("SELECT (extract(epoch from clock_timestamp()) * 1e6)::bigint"))).scalar()


async def live_workers(conn, now: int) -> list[tuple[str, str]]:
    """(worker id, roles) of the workers seen in the last LIVE_SECONDS before `now`, by id."""
    rows = await conn.execute(
        select(pt.workers.c.worker_id, pt.workers.c.roles)
        .where(pt.workers.c.seen_at > now - int(LIVE_SECONDS * 1e6))
        .order_by(pt.workers.c.worker_id)
    )
    return [(row.worker_id, row.roles) for row in rows]


async def _again(role: str, work, stop: asyncio.Event) -> None:
    """Run a role until `stop`; when it fails (a lock's connection died with the database,
    the broker is away) it is logged and offered again after a pause."""
    while not stop.is_set():
        try:
            await work(stop)
        except asyncio.CancelledError:
            raise
        except locks.WaitStopped:
            return  # the worker stops while this role waited for its lock
        except Exception as error:  # noqa: BLE001 - logged, and the role is taken up again
            log.exception("role_failed", role=role, error=repr(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


def all_schemas(base: str, shards: int) -> list[str]:
    """Every schema of a sharded recalculator, each name checked (schema_names): a base
    whose stage names would not be acceptable is refused before anything runs."""
    names = [base, router_schema(base), assembler_schema(base), *(shard_schema(base, p) for p in range(shards))]
    for name in names:
        schema_names.checked(name)
    return names


async def rebuild(url: str, base: str, shards: int, *, kafka: KafkaSettings | None = None,
                  topics: InputTopics | None = None, outputs: OutputTopics | None = None,
                  deadline: float = 3600) -> int:
    """Empty every stage's state and consume the input topics again from the beginning, up to
    their present end, in this process. Every stage's lock is taken first, so this waits for
    running workers to stop (and workers started meanwhile wait for it). Returns the inputs
    applied."""
    from backorders_platform.migrations import drop_schema

    kafka, topics = kafka or KafkaSettings(), topics or InputTopics()
    schemas = all_schemas(base, shards)  # checked before any lock is taken or schema dropped
    db = make_engine(url)
    held = []
    try:
        for purpose, schema in [("recalculator", router_schema(base)), ("assembler", assembler_schema(base)),
                                *(("shard", shard_schema(base, p)) for p in range(shards))]:
            held.append(await locks.hold(db, locks.key(purpose, schema)))
        for schema in schemas:
            await drop_schema(url, schema)
    finally:
        for connection in held:
            await locks.release(connection)
        await db.dispose()
    from aiokafka import AIOKafkaConsumer, TopicPartition

    probe = AIOKafkaConsumer(*topics.all(), **kafka.client_options(), group_id=None, enable_auto_commit=False)
    await probe.start()
    try:
        partitions = [TopicPartition(t, p) for t in topics.all() for p in probe.partitions_for_topic(t) or ()]
        ends = {f"{tp.topic}:{tp.partition}": end for tp, end in (await probe.end_offsets(partitions)).items()}
    finally:
        await probe.stop()
    stop = asyncio.Event()
    worker = ShardedWorker(url, base=base, shards=shards, kafka=kafka, topics=topics, outputs=outputs)
    running = asyncio.create_task(worker.run(stop))
    loop = asyncio.get_running_loop()
    until = loop.time() + deadline
    try:
        while True:
            await asyncio.sleep(0.2)
            if running.done():
                running.result()
                raise RuntimeError("the rebuilding worker stopped")
            try:
                stored = await _router_positions(url, base)
                waiting = await backlog(url, base)
            except (SQLAlchemyError, OSError):
                continue  # the schemas are being created
            if all(stored.get(key, -1) + 1 >= end for key, end in ends.items()) and not any(waiting.values()):
                break
            if loop.time() > until:
                raise TimeoutError("the rebuild did not finish in time")
    finally:
        stop.set()
        await asyncio.gather(running, return_exceptions=True)
    db = make_engine(url, router_schema(base))
    try:
        async with db.connect() as conn:
            return (await conn.execute(text("select count(*) from processed_events"))).scalar_one()
    finally:
        await db.dispose()


async def _router_positions(url: str, base: str) -> dict[str, int]:
    db = make_engine(url, router_schema(base))
    try:
        return await Repository(db, router_schema(base)).positions()
    finally:
        await db.dispose()


async def assembled_state(url: str, base: str) -> dict[str, tuple[str, dict[str, int]]]:
    """order id → (status, {line id: backorder}) as the assembler last published it."""
    db = make_engine(url, base)
    try:
        async with db.connect() as conn:
            rows = (await conn.execute(select(pt.assembled_orders))).all()
    finally:
        await db.dispose()
    return {row.order_id: (row.status, json.loads(row.doc)["published"]) for row in rows}


async def backlog(url: str, base: str) -> dict[str, int]:
    """Work not yet done between the stages."""
    db = make_engine(url, base)
    try:
        async with db.connect() as conn:
            counts = {}
            for name, table in (("routed", pt.routed), ("causes", pt.causes), ("handoffs", pt.handoffs)):
                counts[name] = (await conn.execute(select(func.count()).select_from(table))).scalar()
    finally:
        await db.dispose()
    return counts


__all__ = ["AssemblerStage", "RouterWorker", "ShardStage", "ShardedWorker"]
