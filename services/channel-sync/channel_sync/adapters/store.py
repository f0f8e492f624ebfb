"""Channel-sync's state in SQL through SQLAlchemy's async engine (SQLite and PostgreSQL).

Two kinds of transaction, each all-or-nothing:
- a batch of consumed records: the projection rows it changed, the SKUs it made pending
  for each channel, the dead letters of the records that could not be taken in, and how
  far each source was consumed;
- a batch of rows a channel answered: the rows it accepted (and those pending cleared), the
  failures, and the channel's batch counter.

Fencing: the process that writes (the worker, a push from the command line, the embedded
run) first claims the state (`claim`: a fresh token in `channel_sync_meta.owner`, written
before the projection is loaded); from then on every transaction it writes in first checks
that the token is still the current one and writes nothing otherwise (`FencedOut`). A
worker that lost its advisory lock without noticing (PostgreSQL restarted under it) while
another took over can therefore never write again: the other claimed the state.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson
from backorders_platform import consumer_store
from backorders_platform.database import FencedOut, dialect_insert, upsert
from backorders_platform.redaction import redact
from backorders_platform.screening import Refused, storable
from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..channels.base import Outcome
from ..domain.feeds import canonical
from ..domain.projection import (
    Container,
    POLine,
    Position,
    Projection,
    ProjectionChanges,
    Pruned,
    Receipt,
)
from . import migrate
from . import tables as t

SETTING_KEYS = {"use_containers": "use_shipping_containers_for_po", "magento_tags": "send_magento_backorder_tags"}
OWNER_KEY = "owner"
CLOCK_KEY, HORIZON_KEY = "clock", "horizon"


def _stamp(seconds: float) -> str:
    """A wall-clock time as stored in `failed_at` (sorts as it reads)."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _iso_time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _date(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


class Store:
    def __init__(self, db: AsyncEngine, schema: str | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.schema = schema
        self.owner: str | None = None  # set by `claim`: then every write is fenced
        self.clock = clock  # the wall clock: when failures and dead letters were recorded

    async def create_schema(self) -> None:
        await migrate.upgrade(self.db, self.schema)

    # -- fencing -----------------------------------------------------------------------------

    async def claim(self) -> str:
        """Make this process the owner of the state: from now on the writes of any earlier
        owner fail (`FencedOut`), even one that still believes it is the active worker.
        Call it before loading the projection, so that what is loaded is what no one else
        can change any more."""
        owner = uuid.uuid4().hex
        async with self.db.begin() as conn:
            await upsert(conn, t.meta, [{"key": OWNER_KEY, "value": owner}], ["key"])
        self.owner = owner
        return owner

    async def _fence(self, conn: AsyncConnection) -> None:
        """First statement of a writing transaction: the state must still be ours. The
        row lock it takes orders it with a `claim` of another process."""
        if self.owner is None:
            return
        held = await conn.execute(
            update(t.meta).where(t.meta.c.key == OWNER_KEY, t.meta.c.value == self.owner).values(value=self.owner)
        )
        if held.rowcount != 1:
            raise FencedOut("another channel-sync process has claimed this state: this one writes nothing more")

    @asynccontextmanager
    async def _fenced(self) -> AsyncIterator[AsyncConnection]:
        """A writing transaction, fenced."""
        async with self.db.begin() as conn:
            await self._fence(conn)
            yield conn

    async def check_owner(self) -> None:
        """Raises FencedOut when another process has claimed the state since."""
        async with self.db.begin() as conn:
            await self._fence(conn)

    async def reachable(self) -> bool:
        """Whether the database answers (an outage is waited out, not counted as a failure)."""
        return await consumer_store.reachable(self.db)

    # -- the projection ------------------------------------------------------------------

    async def load(self, projection: Projection) -> None:
        """Fill an empty projection with the stored one."""
        async with self.db.connect() as conn:
            for row in await conn.execute(select(t.purchase_orders)):
                lines = [
                    POLine(sku, ordered, received, _date(eta))
                    for sku, ordered, received, eta in orjson.loads(row.lines)
                ]
                projection.load_purchase_order(row.po_id, lines, _time(row.updated_at))
            for row in await conn.execute(select(t.containers)):
                projection.load_container(row.container_id, Container(_date(row.eta), orjson.loads(row.lines)),
                                          _time(row.updated_at))
            for row in await conn.execute(select(t.products)):
                projection.names[row.sku] = row.name
            for row in await conn.execute(select(t.positions)):
                projection.positions[row.sku] = Position(row.available_qty, row.backorder_qty)
            meta = dict((await conn.execute(select(t.meta.c.key, t.meta.c.value))).all())
            for attribute, key in SETTING_KEYS.items():
                if key in meta:
                    setattr(projection, attribute, meta[key] == "true")
            projection.clock, projection.horizon = _time(meta.get(CLOCK_KEY)), _time(meta.get(HORIZON_KEY))
            for row in await conn.execute(select(t.receipts)):
                if row.po_id is None or row.at is None:
                    projection.receipts_seen.add(row.event_id)  # stored before times were kept
                    continue
                lines = tuple((sku, qty) for sku, qty in orjson.loads(row.lines))
                projection.load_receipt(Receipt(row.event_id, row.po_id, _time(row.at), lines))
        projection.take_changes()

    async def commit_consumed(
        self,
        projection: Projection,
        changes: ProjectionChanges,
        pending: Mapping[str, Iterable[str]],
        sources: Mapping[str, int],
        dead_letters: Sequence[dict] = (),
    ) -> None:
        """One batch of consumed records: projection rows, pending SKUs per channel, the
        dead letters and the sources' positions, in one transaction."""
        async with self.db.begin() as conn:
            await self._fence(conn)
            await self._write_projection(conn, projection, changes)
            if dead_letters:
                await conn.execute(t.dead_letters.insert(), list(dead_letters))
            await self._touch_pending(conn, pending)
            positions = [{"source": k, "position": v} for k, v in sorted(sources.items())]
            await upsert(conn, t.sources, positions, ["source"])

    async def _write_projection(self, conn, projection: Projection, changes: ProjectionChanges) -> None:
        gone = [po for po in changes.purchase_orders if po not in projection.purchase_orders]
        if gone:
            await conn.execute(t.purchase_orders.delete().where(t.purchase_orders.c.po_id.in_(gone)))
        await upsert(conn, t.purchase_orders, [
            {"po_id": po, "lines": orjson.dumps([
                [line.sku, line.qty_ordered, line.qty_received, _iso(line.eta)]
                for line in projection.purchase_orders[po]
            ]).decode(), "updated_at": _iso_time(projection.po_times.get(po))}
            for po in sorted(changes.purchase_orders) if po in projection.purchase_orders
        ], ["po_id"])
        await upsert(conn, t.containers, [
            {"container_id": c, "eta": _iso(projection.containers[c].eta),
             "lines": orjson.dumps(projection.containers[c].lines).decode(),
             "updated_at": _iso_time(projection.container_times.get(c))}
            for c in sorted(changes.containers) if c in projection.containers
        ], ["container_id"])
        await upsert(conn, t.products, [
            {"sku": sku, "name": projection.names.get(sku)} for sku in sorted(changes.names)
        ], ["sku"])
        await upsert(conn, t.positions, [
            {"sku": sku, "available_qty": projection.positions[sku].available,
             "backorder_qty": projection.positions[sku].backorder}
            for sku in sorted(changes.positions)
        ], ["sku"])
        if changes.settings:
            await upsert(conn, t.meta, [
                {"key": key, "value": "true" if getattr(projection, attribute) else "false"}
                for attribute, key in SETTING_KEYS.items()
            ], ["key"])
        if changes.clock and projection.clock is not None:
            await upsert(conn, t.meta, [{"key": CLOCK_KEY, "value": _iso_time(projection.clock)}], ["key"])
        if changes.receipts:
            await conn.execute(t.receipts.insert(), [
                {"event_id": r.event_id, "po_id": r.po_id, "at": _iso_time(r.at),
                 "lines": orjson.dumps([list(line) for line in r.lines]).decode()}
                for r in changes.receipts
            ])

    async def _touch_pending(self, conn, pending: Mapping[str, Iterable[str]]) -> None:
        rows = [{"channel": c, "sku": s, "version": 1} for c, skus in sorted(pending.items()) for s in sorted(skus)]
        if not rows:
            return
        stmt = dialect_insert(conn.dialect.name, t.pending)
        stmt = stmt.on_conflict_do_update(
            index_elements=["channel", "sku"], set_={"version": t.pending.c.version + 1}
        )
        await conn.execute(stmt, rows)

    async def mark_pending(self, channel: str, skus: Iterable[str]) -> None:
        async with self.db.begin() as conn:
            await self._fence(conn)
            await self._touch_pending(conn, {channel: list(skus)})

    async def dead_letter(self, source: str, position: int, raw: Any, refused: Refused, *, now: float) -> None:
        """Record one record as dead and pass its position, in one transaction (a record
        the intake failed on again and again)."""
        async with self.db.begin() as conn:
            await self._fence(conn)
            stored = (await conn.execute(select(t.sources.c.position).where(t.sources.c.source == source))).scalar()
            if stored is not None and position <= stored:
                return
            await conn.execute(t.dead_letters.insert(),
                               [consumer_store.dead_letter_row(source, position, raw, refused, now)])
            await upsert(conn, t.sources, [{"source": source, "position": position}], ["source"])

    async def dead_letters(self, limit: int | None = None) -> list:
        """Dead letters, oldest first (the latest `limit` when given)."""
        return await consumer_store.dead_letters(self.db, t.dead_letters, limit)

    async def positions(self, prefix: str = "") -> dict[str, int]:
        query = select(t.sources.c.source, t.sources.c.position)
        if prefix:
            query = query.where(t.sources.c.source.startswith(prefix))
        async with self.db.connect() as conn:
            return dict((await conn.execute(query)).all())

    async def position(self, source: str) -> int | None:
        async with self.db.connect() as conn:
            return (await conn.execute(select(t.sources.c.position).where(t.sources.c.source == source))).scalar()

    # -- channels ----------------------------------------------------------------------------

    async def channel_states(self) -> dict[str, tuple[str, str]]:
        """Channel → (destination, fingerprint) as last synced."""
        query = select(t.channels.c.channel, t.channels.c.destination, t.channels.c.fingerprint)
        async with self.db.connect() as conn:
            return {name: (dest, print_) for name, dest, print_ in await conn.execute(query)}

    async def sync_channels(self, states: Mapping[str, tuple[str, str]], skus: Sequence[str]) -> list[str]:
        """`states`: channel → (destination, fingerprint). A channel that is new, or whose
        destination or row-shaping configuration changed, gets every SKU pending; a new
        destination also forgets the rows the old one accepted. Returns their names."""
        async with self.db.begin() as conn:
            await self._fence(conn)
            stored = {
                name: (dest, print_)
                for name, dest, print_ in await conn.execute(
                    select(t.channels.c.channel, t.channels.c.destination, t.channels.c.fingerprint)
                )
            }
            changed = [name for name, state in sorted(states.items()) if stored.get(name) != state]
            if not changed:
                return []
            await self._touch_pending(conn, {name: skus for name in changed})
            for name in changed:
                destination, fingerprint = states[name]
                if name not in stored:
                    await conn.execute(t.channels.insert().values(
                        channel=name, destination=destination, fingerprint=fingerprint, batches=0))
                    continue
                if stored[name][0] != destination:
                    # A new destination has accepted and refused nothing yet.
                    await conn.execute(t.accepted.delete().where(t.accepted.c.channel == name))
                    await conn.execute(
                        update(t.failures).where(t.failures.c.channel == name, t.failures.c.resolved.is_(False))
                        .values(resolved=True)
                    )
                await conn.execute(
                    update(t.channels).where(t.channels.c.channel == name)
                    .values(destination=destination, fingerprint=fingerprint)
                )
        return changed

    async def pending(self, channel: str, limit: int | None = None) -> dict[str, int]:
        """SKU → version of what is pending for `channel`, by SKU."""
        query = (
            select(t.pending.c.sku, t.pending.c.version)
            .where(t.pending.c.channel == channel).order_by(t.pending.c.sku)
        )
        if limit:
            query = query.limit(limit)
        async with self.db.connect() as conn:
            return dict((await conn.execute(query)).all())

    async def accepted(self, channel: str, skus: Iterable[str] | None = None) -> dict[str, str]:
        """SKU → canonical text of the row `channel` last accepted."""
        query = select(t.accepted.c.sku, t.accepted.c.row).where(t.accepted.c.channel == channel)
        wanted = None if skus is None else set(skus)
        async with self.db.connect() as conn:
            if wanted is not None and len(wanted) <= 500:
                query = query.where(t.accepted.c.sku.in_(sorted(wanted)))
            found = dict((await conn.execute(query)).all())
        return found if wanted is None else {k: v for k, v in found.items() if k in wanted}

    async def refused_rows(self, channel: str, skus: Iterable[str] | None = None) -> dict[str, str]:
        """SKU → canonical text of the row `channel` refused, for the SKUs whose latest open
        failure is a refusal (not a delivery given up on, which is tried again)."""
        latest = (
            select(t.failures.c.sku, func.max(t.failures.c.seq).label("seq"))
            .where(t.failures.c.channel == channel, t.failures.c.resolved.is_(False))
            .group_by(t.failures.c.sku).subquery()
        )
        query = (
            select(t.failures.c.sku, t.failures.c.row)
            .join(latest, and_(t.failures.c.sku == latest.c.sku, t.failures.c.seq == latest.c.seq))
            .where(t.failures.c.kind == "rejected")
        )
        wanted = None if skus is None else set(skus)
        async with self.db.connect() as conn:
            found = dict((await conn.execute(query)).all())
        return found if wanted is None else {k: v for k, v in found.items() if k in wanted}

    async def clear_pending(self, channel: str, versions: Mapping[str, int]) -> None:
        if not versions:
            return
        async with self.db.begin() as conn:
            await self._fence(conn)
            await self._clear_pending(conn, channel, versions)

    @staticmethod
    async def _clear_pending(conn, channel: str, versions: Mapping[str, int]) -> None:
        if not versions:
            return
        stmt = t.pending.delete().where(and_(
            t.pending.c.channel == bindparam("p_channel"), t.pending.c.sku == bindparam("p_sku"),
            t.pending.c.version == bindparam("p_version"),
        ))
        await conn.execute(stmt, [
            {"p_channel": channel, "p_sku": sku, "p_version": version} for sku, version in sorted(versions.items())
        ])

    async def batches(self, channel: str) -> int:
        async with self.db.connect() as conn:
            value = (await conn.execute(select(t.channels.c.batches).where(t.channels.c.channel == channel))).scalar()
        return value or 0

    async def record_answers(
        self,
        channel: str,
        batch: int,
        rows: Mapping[str, dict],
        outcomes: Sequence[Outcome],
        versions: Mapping[str, int],
    ) -> None:
        """What the channel answered for one batch, in one transaction: accepted rows
        stored (their pending cleared, their open failures resolved), refused rows recorded
        as failed (pending cleared: sent again only once the row changes), rows given up on
        recorded and left pending for the next push."""
        now = _stamp(self.clock())
        accepted = [o for o in outcomes if o.kind == "accepted"]
        failed = [o for o in outcomes if o.kind != "accepted"]
        async with self.db.begin() as conn:
            await self._fence(conn)
            await upsert(conn, t.accepted, [
                {"channel": channel, "sku": o.sku, "row": canonical(rows[o.sku]), "batch": batch, "accepted_at": now}
                for o in accepted
            ], ["channel", "sku"])
            if accepted:
                await conn.execute(
                    update(t.failures)
                    .where(t.failures.c.channel == channel, t.failures.c.resolved.is_(False),
                           t.failures.c.sku.in_([o.sku for o in accepted]))
                    .values(resolved=True)
                )
            if failed:
                await conn.execute(t.failures.insert(), [
                    {"channel": channel, "sku": o.sku, "kind": o.kind, "status": o.status,
                     "body": storable(redact(o.body), 4000),
                     "row": canonical(rows[o.sku]), "attempts": o.attempts, "batch": batch, "failed_at": now,
                     "resolved": False}
                    for o in failed
                ])
            settled = {o.sku: versions[o.sku] for o in outcomes if o.kind != "gave_up" and o.sku in versions}
            await self._clear_pending(conn, channel, settled)
            await conn.execute(update(t.channels).where(t.channels.c.channel == channel).values(batches=batch))

    # -- retention -----------------------------------------------------------------------------

    async def prune_projection(self, pruned: Pruned, horizon: datetime | None, *, chunk: int = 500) -> list[str]:
        """Delete what `Projection.prune` forgot, and every stored receipt older than the
        horizon, after storing the horizon: in transactions of at most `chunk` rows, each
        fenced. Returns the event ids of the receipts deleted."""
        if horizon is not None:
            async with self.db.begin() as conn:
                await self._fence(conn)
                await upsert(conn, t.meta, [{"key": HORIZON_KEY, "value": _iso_time(horizon)}], ["key"])
        for table, key, ids in ((t.purchase_orders, t.purchase_orders.c.po_id, pruned.purchase_orders),
                                (t.containers, t.containers.c.container_id, pruned.containers)):
            for start in range(0, len(ids), chunk):
                async with self.db.begin() as conn:
                    await self._fence(conn)
                    await conn.execute(table.delete().where(key.in_(ids[start:start + chunk])))
        deleted: list[str] = []
        if horizon is None:
            return deleted
        old = select(t.receipts.c.event_id).where(t.receipts.c.at < _iso_time(horizon)).order_by(
            t.receipts.c.event_id).limit(chunk)
        while True:
            async with self.db.begin() as conn:
                await self._fence(conn)
                ids = [row.event_id for row in await conn.execute(old)]
                if ids:
                    await conn.execute(t.receipts.delete().where(t.receipts.c.event_id.in_(ids)))
            deleted += ids
            if len(ids) < chunk:
                return deleted

    async def prune_records(self, *, failures_before: float, dead_letters_before: float,
                            chunk: int = 500) -> PrunedRecords:
        """Failures recorded before `failures_before` (wall clock) that are resolved, or
        superseded by a later failure of the same channel and SKU (the latest open one of
        a SKU stays: it keeps a refused row from being sent again unchanged), and dead
        letters recorded before `dead_letters_before`; `chunk` rows per transaction."""
        f, later = t.failures, t.failures.alias("later")
        superseded = select(later.c.seq).where(
            later.c.channel == f.c.channel, later.c.sku == f.c.sku, later.c.seq > f.c.seq).exists()
        old_failures = select(f.c.seq).where(
            f.c.failed_at < _stamp(failures_before), or_(f.c.resolved.is_(True), superseded))
        d = t.dead_letters
        old_dead = select(d.c.seq).where(d.c.recorded_at < dead_letters_before)
        return PrunedRecords(await self._delete_chunks(f, f.c.seq, old_failures, chunk),
                             await self._delete_chunks(d, d.c.seq, old_dead, chunk))

    async def _delete_chunks(self, table, key, chosen, chunk: int) -> int:
        return await consumer_store.delete_chunks(self._fenced, table, key, chosen, chunk)

    async def counts_by_table(self) -> dict[str, int]:
        """Rows per table (for operators and the retention tests)."""
        return await consumer_store.counts_by_table(self.db, t.metadata)

    # -- reading for operators and summaries --------------------------------------------------

    async def failures(self, channel: str | None = None, *, include_resolved: bool = False, limit: int = 100) -> list:
        query = select(t.failures).order_by(t.failures.c.seq.desc()).limit(limit)
        if channel:
            query = query.where(t.failures.c.channel == channel)
        if not include_resolved:
            query = query.where(t.failures.c.resolved.is_(False))
        async with self.db.connect() as conn:
            return list(reversed((await conn.execute(query)).all()))

    async def counts(self) -> dict[str, dict[str, int]]:
        """Per channel: rows accepted (current), batches sent, open failures, pending SKUs."""
        result: dict[str, dict[str, int]] = {}
        async with self.db.connect() as conn:
            for channel, batches in await conn.execute(select(t.channels.c.channel, t.channels.c.batches)):
                result[channel] = {"accepted": 0, "batches": batches, "failures": 0, "pending": 0}
            for table, key, extra in (
                (t.accepted, "accepted", None),
                (t.failures, "failures", t.failures.c.resolved.is_(False)),
                (t.pending, "pending", None),
            ):
                query = select(table.c.channel, func.count()).group_by(table.c.channel)
                if extra is not None:
                    query = query.where(extra)
                for channel, count in await conn.execute(query):
                    result.setdefault(channel, {"accepted": 0, "batches": 0, "failures": 0, "pending": 0})[key] = count
        return result


@dataclass(frozen=True, slots=True)
class PrunedRecords:
    failures: int = 0
    dead_letters: int = 0
