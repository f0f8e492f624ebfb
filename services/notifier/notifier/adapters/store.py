"""The notifier's state in SQL (SQLAlchemy Core; SQLite and PostgreSQL alike).

Intake: one transaction per batch reads what the batch needs, lets the pure intake decide,
and writes the projection rows, the notifications and each source's position together. On
PostgreSQL the transaction first takes an advisory lock named after the schema, so batches of several processes
(partitions of one consumer group) are applied one after the other and a pending
notification cannot be missed by the order data arriving in a parallel batch.

Delivery: a notification is claimed (`sending`, with the claimant and the time) in one
short transaction, then marked `sent` in another right after the server accepted it. The
time of a claim is the database's, and so is the time its lease is measured against: the
instances claiming and the one putting back an expired claim may run on hosts whose clocks
disagree, the database has one clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from backorders_platform import consumer_store, locks
from backorders_platform.database import dialect_insert, upsert
from backorders_platform.screening import Refused
from sqlalchemy import Float, and_, bindparam, cast, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..domain.facts import LineFacts, OrderFacts
from ..domain.intake import (
    EMAILED,
    FAILED,
    PENDING,
    QUEUED,
    SENDING,
    SENT,
    SUPPRESSED,
    IntakeResult,
    Loaded,
    Notification,
)
from . import migrate
from . import tables as t

_CHUNK = 500  # ids per IN (...) list
CLOCK, HORIZON = "clock", "horizon"  # notifier_meta keys (µs business time)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SPLIT_DEPTH = 4  # levels of split-off orders followed when loading


def intake_lock_id(schema: str | None) -> int:
    """The advisory lock serialising intake batches: one per schema, so notifiers keeping
    their state in different schemas of one database never wait for each other."""
    return locks.key("notifier-intake", schema)


def database_now(dialect: str):
    """The database's clock, in seconds since the epoch (SQL)."""
    if dialect == "postgresql":
        return cast(func.extract("epoch", func.clock_timestamp()), Float)
    return (func.julianday("now") - 2440587.5) * 86400.0


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    values = sorted(values)
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


@dataclass(frozen=True, slots=True)
class Claimed:
    """A notification claimed for delivery."""

    notification_id: str
    order_id: str
    company_id: str
    template: str
    event_time: int
    change: dict[str, Any]
    attempts: int


class Store:
    def __init__(self, db: AsyncEngine, schema: str | None = None) -> None:
        self.db = db
        self.schema = schema
        self.intake_lock = intake_lock_id(schema)

    async def create_schema(self) -> None:
        await migrate.upgrade(self.db, self.schema)

    # -- intake ----------------------------------------------------------------------------

    async def intake(
        self,
        sources: dict[str, Iterable[tuple[int, Any]]],
        *,
        decode: Callable[[Any], Any | None],
        decide: Callable[[list[Any], Loaded, int], IntakeResult],
        named: Callable[[list[Any]], tuple[set[str], set[str]]],
        now: float,
    ) -> IntakeResult | None:
        """One batch in one transaction. `sources` maps each source to its `(position, raw)`
        records in order; records at or before the source's stored position are passed
        over, the others decoded (None: of no interest). `named(events)` gives the order ids
        and notification ids the events need; `decide(events, loaded, ignored)` is the pure
        intake. Returns None when every record had been taken in before."""
        async with self.db.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": self.intake_lock})
            stored = await self._positions(conn, sources.keys())
            events: list[Any] = []
            dead: list[dict] = []
            last: dict[str, int] = {}
            ignored = 0
            for source, records in sources.items():
                after = stored.get(source)
                for position, raw in records:
                    if after is not None and position <= after:
                        continue
                    last[source] = position
                    event = decode(raw)
                    if event is None:
                        ignored += 1
                    elif isinstance(event, Refused):
                        dead.append(consumer_store.dead_letter_row(source, position, raw, event, now))
                    else:
                        events.append(event)
            if not last:
                return None
            order_ids, notification_ids = named(events)
            loaded = await self._load(conn, order_ids, notification_ids)
            meta = await self._meta(conn)
            loaded.horizon = meta.get(HORIZON)
            result = decide(events, loaded, ignored)
            await self._write(conn, result, now)
            latest = max((_us(event.time) for event in events), default=None)
            if latest is not None and (meta.get(CLOCK) is None or latest > meta[CLOCK]):
                await upsert(conn, t.meta, [{"key": CLOCK, "value": str(latest)}], ["key"])
            if dead:
                await conn.execute(t.dead_letters.insert(), dead)
            await self._save_positions(conn, last)
            result.dead = dead
            result.tally.dead_letters = len(dead)
            return result

    async def dead_letter(self, source: str, position: int, raw: Any, refused: Refused, *, now: float) -> None:
        """Record one record as dead and pass its position, in one transaction (a record
        the intake failed on again and again)."""
        async with self.db.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": self.intake_lock})
            stored = (await self._positions(conn, [source])).get(source)
            if stored is not None and position <= stored:
                return  # taken in meanwhile (another instance, or a retry that did commit)
            await conn.execute(t.dead_letters.insert(),
                               [consumer_store.dead_letter_row(source, position, raw, refused, now)])
            await self._save_positions(conn, {source: position})

    async def _meta(self, conn: AsyncConnection) -> dict[str, int]:
        rows = await conn.execute(select(t.meta.c.key, t.meta.c.value).where(t.meta.c.key.in_([CLOCK, HORIZON])))
        return {key: int(value) for key, value in rows}

    async def meta(self) -> dict[str, int]:
        """The business clock and the pruning horizon (µs), when known."""
        async with self.db.connect() as conn:
            return await self._meta(conn)

    # -- retention -----------------------------------------------------------------------------

    async def prune(self, *, now: float, keep_us: int, cooldown_us: int, dead_letters_before: float,
                    chunk: int = 500) -> Pruned:
        """Delete what no longer serves, `chunk` rows per transaction (each taking the intake
        lock, so no intake batch sees half of it):

        - sent and suppressed notifications whose change is older than the window, in
          business time: the latest change taken in (bounded by the wall clock `now`, so an
          event dated in the future cannot empty the table) minus `keep_us`, or the longest
          cool-down if that is longer (the cool-down must see the emails within it). Pending,
          queued, sending and failed ones are never pruned. The horizon — the cut-off plus
          the cool-down — is stored first: a transition older than it is not recorded again
          (a repeat of a pruned one, or a change older than the window);
        - orders closed (completed, cancelled, voided) before the cut-off that no remaining
          notification names and no remaining order was split from;
        - dead letters recorded before `dead_letters_before` (wall clock)."""
        pruned = Pruned()
        clock = (await self.meta()).get(CLOCK)
        if clock is not None:
            cutoff = min(clock, int(now * 1_000_000)) - max(keep_us, cooldown_us)
            pruned.cutoff_us = cutoff
            async with self._locked() as conn:
                stored = (await self._meta(conn)).get(HORIZON)
                if stored is None or cutoff + cooldown_us > stored:
                    await upsert(conn, t.meta, [{"key": HORIZON, "value": str(cutoff + cooldown_us)}], ["key"])
            n, o = t.notifications, t.orders
            pruned.notifications = await self._delete_chunks(
                n, n.c.notification_id,
                select(n.c.notification_id).where(n.c.status.in_([SENT, SUPPRESSED]), n.c.event_time < cutoff),
                chunk)
            child = o.alias("child")
            pruned.orders = await self._delete_chunks(
                o, o.c.order_id,
                select(o.c.order_id).where(
                    o.c.closed_at < cutoff,
                    ~select(n.c.notification_id).where(n.c.order_id == o.c.order_id).exists(),
                    ~select(child.c.order_id).where(child.c.parent_order_id == o.c.order_id).exists()),
                chunk)
        d = t.dead_letters
        pruned.dead_letters = await self._delete_chunks(
            d, d.c.seq, select(d.c.seq).where(d.c.recorded_at < dead_letters_before), chunk)
        return pruned

    async def _delete_chunks(self, table, key, chosen, chunk: int) -> int:
        return await consumer_store.delete_chunks(self._locked, table, key, chosen, chunk)

    def _locked(self):
        return _Locked(self)

    async def counts_by_table(self) -> dict[str, int]:
        """Rows per table (for operators and the retention tests)."""
        return await consumer_store.counts_by_table(self.db, t.metadata)

    async def reachable(self) -> bool:
        """Whether the database answers (an outage is waited out, not counted as a failure)."""
        return await consumer_store.reachable(self.db)

    async def dead_letters(self, limit: int | None = None) -> list:
        """Dead letters, oldest first (the latest `limit` when given)."""
        return await consumer_store.dead_letters(self.db, t.dead_letters, limit)

    async def _positions(self, conn: AsyncConnection, sources: Iterable[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for chunk in _chunks(set(sources)):
            rows = await conn.execute(
                select(t.positions.c.source, t.positions.c.position).where(t.positions.c.source.in_(chunk))
            )
            found.update(dict(rows.all()))
        return found

    async def _save_positions(self, conn: AsyncConnection, last: dict[str, int]) -> None:
        stmt = dialect_insert(conn.dialect.name, t.positions)
        # Never backwards: a process that lost a partition may still commit an older batch.
        greatest = func.greatest if conn.dialect.name == "postgresql" else func.max
        stmt = stmt.on_conflict_do_update(
            index_elements=["source"],
            set_={"position": greatest(t.positions.c.position, stmt.excluded.position)},
        )
        await conn.execute(stmt, [{"source": k, "position": v} for k, v in sorted(last.items())])

    async def _load(self, conn: AsyncConnection, order_ids: set[str], notification_ids: set[str]) -> Loaded:
        loaded = Loaded()
        loaded.facts = await self._facts(conn, order_ids)
        # The orders split off these ones (their customer may arrive with this batch).
        frontier = set(order_ids)
        for _ in range(_SPLIT_DEPTH):
            children: set[str] = set()
            for chunk in _chunks(frontier):
                rows = await conn.execute(
                    select(t.orders.c.order_id).where(t.orders.c.parent_order_id.in_(chunk))
                )
                children.update(r.order_id for r in rows)
            children -= set(loaded.facts)
            if not children:
                break
            loaded.facts.update(await self._facts(conn, children))
            frontier = children
        concerned = set(loaded.facts)
        for chunk in _chunks(notification_ids):
            rows = await conn.execute(
                select(t.notifications.c.notification_id).where(t.notifications.c.notification_id.in_(chunk))
            )
            loaded.existing.update(r.notification_id for r in rows)
        for chunk in _chunks(concerned):
            rows = await conn.execute(
                select(t.notifications.c.order_id, func.max(t.notifications.c.event_time))
                .where(t.notifications.c.order_id.in_(chunk), t.notifications.c.status.in_(sorted(EMAILED)))
                .group_by(t.notifications.c.order_id)
            )
            loaded.last_emailed.update(dict(rows.all()))
            rows = await conn.execute(
                select(t.notifications)
                .where(t.notifications.c.order_id.in_(chunk), t.notifications.c.status == PENDING)
            )
            loaded.pending.extend(_notification(r) for r in rows)
        return loaded

    async def _facts(self, conn: AsyncConnection, order_ids: Iterable[str]) -> dict[str, OrderFacts]:
        """The rows of `order_ids` and of the orders they were split from."""
        facts: dict[str, OrderFacts] = {}
        wanted = set(order_ids)
        while wanted:
            for chunk in _chunks(wanted):
                rows = await conn.execute(select(t.orders).where(t.orders.c.order_id.in_(chunk)))
                for row in rows:
                    facts[row.order_id] = _facts_of(row)
            wanted = {
                f.parent_order_id for f in facts.values()
                if f.parent_order_id and f.parent_order_id not in facts
            } - wanted
        return facts

    async def _write(self, conn: AsyncConnection, result: IntakeResult, now: float) -> None:
        rows = [_facts_row(f) for f in result.facts.values()]
        if rows:
            stmt = dialect_insert(conn.dialect.name, t.orders)
            stmt = stmt.on_conflict_do_update(
                index_elements=["order_id"],
                set_={c.name: stmt.excluded[c.name] for c in t.orders.columns if c.name != "order_id"},
            )
            await conn.execute(stmt, rows)
        if result.new:
            stmt = dialect_insert(conn.dialect.name, t.notifications).on_conflict_do_nothing(
                index_elements=["notification_id"]
            )
            await conn.execute(stmt, [_notification_row(n, now) for n in result.new])
        for n in result.decided:
            await conn.execute(
                update(t.notifications)
                .where(t.notifications.c.notification_id == n.notification_id,
                       t.notifications.c.status == PENDING)
                .values(status=n.status, last_error=n.last_error, updated_at=now)
            )

    # -- delivery ----------------------------------------------------------------------------

    async def claim_due(self, owner: str, now: float, limit: int) -> list[Claimed]:
        """Take up to `limit` queued notifications that are due at `now`, oldest change
        first; the claim's time is the database's (see `requeue_claimed`)."""
        due = and_(
            t.notifications.c.status == QUEUED,
            or_(t.notifications.c.next_attempt_at.is_(None), t.notifications.c.next_attempt_at <= now),
        )
        n = t.notifications
        async with self.db.begin() as conn:
            ids = [r.notification_id for r in await conn.execute(
                select(n.c.notification_id).where(due).order_by(n.c.event_time, n.c.notification_id).limit(limit)
            )]
            if not ids:
                return []
            # Only rows still queued are taken: another process may have claimed some meanwhile.
            rows = (await conn.execute(
                update(n).where(n.c.notification_id.in_(ids), n.c.status == QUEUED)
                .values(status=SENDING, claimed_by=owner, claimed_at=database_now(conn.dialect.name),
                        updated_at=now)
                .returning(n.c.notification_id, n.c.order_id, n.c.company_id, n.c.template,
                           n.c.event_time, n.c.change, n.c.attempts)
            )).all()
        claimed = [Claimed(r.notification_id, r.order_id, r.company_id, r.template, r.event_time,
                           json.loads(r.change), r.attempts) for r in rows]
        claimed.sort(key=lambda c: (c.event_time, c.notification_id))
        return claimed

    async def next_due(self) -> float | None:
        """When the earliest queued notification is due (0 when one is due now)."""
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    select(func.count(), func.min(func.coalesce(t.notifications.c.next_attempt_at, 0)))
                    .where(t.notifications.c.status == QUEUED)
                )
            ).one()
            return None if row[0] == 0 else float(row[1])

    async def _finish(self, notification_id: str, owner: str, **values) -> bool:
        return await self._finish_many([(notification_id, values)], owner) == 1

    async def _finish_many(self, items: list[tuple[str, dict]], owner: str) -> int:
        """Close claims of `owner` in one transaction; returns how many it still held."""
        done = 0
        async with self.db.begin() as conn:
            for notification_id, values in items:
                result = await conn.execute(
                    update(t.notifications)
                    .where(t.notifications.c.notification_id == notification_id,
                           t.notifications.c.status == SENDING,
                           t.notifications.c.claimed_by == owner)
                    .values(claimed_by=None, claimed_at=None, **values)
                )
                done += result.rowcount
        return done

    async def mark_sent(self, notification_id: str, owner: str, *, attempts: int, message_id: str,
                        recipient: str, note: str | None, now: float) -> bool:
        return await self._finish(notification_id, owner, **_sent(attempts, message_id, recipient, note, now))

    async def mark_sent_many(self, items: list[tuple[str, int, str, str, str | None]], owner: str,
                             now: float) -> int:
        """Several `(notification_id, attempts, message_id, recipient, note)` marked sent in
        one statement (for channels where a repeat is harmless)."""
        n = t.notifications
        stmt = (
            update(n)
            .where(n.c.notification_id == bindparam("nid"), n.c.status == SENDING, n.c.claimed_by == owner)
            .values(status=SENT, attempts=bindparam("n_attempts"), message_id=bindparam("mid"),
                    recipient=bindparam("rcpt"), last_error=bindparam("note"), next_attempt_at=None,
                    claimed_by=None, claimed_at=None, updated_at=now)
        )
        params = [{"nid": nid, "n_attempts": attempts, "mid": mid, "rcpt": rcpt, "note": note}
                  for nid, attempts, mid, rcpt, note in items]
        async with self.db.begin() as conn:
            result = await conn.execute(stmt, params)
            return result.rowcount

    async def mark_retry(self, notification_id: str, owner: str, *, attempts: int, at: float,
                         error: str, now: float) -> bool:
        return await self._finish(notification_id, owner, status=QUEUED, attempts=attempts,
                                  next_attempt_at=at, last_error=error, updated_at=now)

    async def release(self, notification_id: str, owner: str, *, at: float, now: float) -> bool:
        """Put a claimed notification back untried, due at `at` (its attempts unchanged)."""
        return await self._finish(notification_id, owner, status=QUEUED, next_attempt_at=at, updated_at=now)

    async def mark_failed(self, notification_id: str, owner: str, *, attempts: int, error: str,
                          now: float, message_id: str | None = None, recipient: str | None = None) -> bool:
        return await self._finish(notification_id, owner, status=FAILED, attempts=attempts,
                                  last_error=error, next_attempt_at=None, updated_at=now,
                                  message_id=message_id, recipient=recipient)

    async def requeue_claimed(self, *, older_than: float | None = None) -> int:
        """Put back claims of processes that died (a crash between the server's acceptance
        and the `sent` commit leaves one; it is sent again, with the same Message-ID): those
        taken at least `older_than` seconds ago by the database's clock, which also timed
        the claims, so no two hosts' clocks are compared. Without `older_than`, every claim:
        only when no other process can be delivering."""
        condition = t.notifications.c.status == SENDING
        async with self.db.begin() as conn:
            if older_than is not None:
                expired = t.notifications.c.claimed_at <= database_now(conn.dialect.name) - older_than
                condition = and_(condition, expired)
            result = await conn.execute(
                update(t.notifications).where(condition)
                .values(status=QUEUED, claimed_by=None, claimed_at=None, next_attempt_at=None)
            )
            return result.rowcount

    # -- operators ---------------------------------------------------------------------------

    async def requeue_failed(self, *, ids: Sequence[str] = (), order_id: str | None = None,
                             now: float) -> list[str]:
        """Failed notifications (all, these ids, or this order's) queued again from attempt 0."""
        condition = t.notifications.c.status == FAILED
        if ids:
            condition = and_(condition, t.notifications.c.notification_id.in_(list(ids)))
        if order_id is not None:
            condition = and_(condition, t.notifications.c.order_id == order_id)
        async with self.db.begin() as conn:
            chosen = [r.notification_id for r in await conn.execute(
                select(t.notifications.c.notification_id).where(condition))]
            for chunk in _chunks(chosen):
                await conn.execute(
                    update(t.notifications)
                    .where(t.notifications.c.notification_id.in_(chunk), t.notifications.c.status == FAILED)
                    .values(status=QUEUED, attempts=0, next_attempt_at=None, updated_at=now)
                )
            return chosen

    async def notifications(self, status: str | None = None, order_id: str | None = None) -> list:
        query = select(t.notifications).order_by(t.notifications.c.event_time, t.notifications.c.notification_id)
        if status is not None:
            query = query.where(t.notifications.c.status == status)
        if order_id is not None:
            query = query.where(t.notifications.c.order_id == order_id)
        async with self.db.connect() as conn:
            return (await conn.execute(query)).all()

    async def counts(self) -> dict[str, int]:
        async with self.db.connect() as conn:
            rows = await conn.execute(
                select(t.notifications.c.status, func.count()).group_by(t.notifications.c.status)
            )
            return dict(rows.all())

    async def facts(self, order_ids: Iterable[str]) -> dict[str, OrderFacts]:
        """The orders' rows and those of the orders they were split from."""
        async with self.db.connect() as conn:
            return await self._facts(conn, order_ids)

    async def position(self, source: str) -> int | None:
        async with self.db.connect() as conn:
            return (await self._positions(conn, [source])).get(source)

    async def positions(self, prefix: str = "") -> dict[str, int]:
        query = select(t.positions.c.source, t.positions.c.position)
        if prefix:
            query = query.where(t.positions.c.source.startswith(prefix))
        async with self.db.connect() as conn:
            return dict((await conn.execute(query)).all())


@dataclass(slots=True)
class Pruned:
    notifications: int = 0
    orders: int = 0
    dead_letters: int = 0
    cutoff_us: int | None = None  # business time before which changes were pruned

    @property
    def total(self) -> int:
        return self.notifications + self.orders + self.dead_letters


class _Locked:
    """A transaction holding the intake lock (PostgreSQL)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.transaction = None

    async def __aenter__(self) -> AsyncConnection:
        self.transaction = self.store.db.begin()
        conn = await self.transaction.__aenter__()
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": self.store.intake_lock})
        return conn

    async def __aexit__(self, *exc) -> None:
        await self.transaction.__aexit__(*exc)


def _us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _sent(attempts: int, message_id: str, recipient: str, note: str | None, now: float) -> dict:
    return {"status": SENT, "attempts": attempts, "message_id": message_id, "recipient": recipient,
            "last_error": note, "next_attempt_at": None, "updated_at": now}


def _facts_of(row) -> OrderFacts:
    return OrderFacts(
        order_id=row.order_id,
        known=bool(row.known),
        company_id=row.company_id,
        customer=json.loads(row.customer) if row.customer else None,
        order_date=row.order_date,
        parent_order_id=row.parent_order_id,
        lines={k: LineFacts(v[0], v[1]) for k, v in json.loads(row.lines).items()},
        last_change=json.loads(row.last_change) if row.last_change else None,
        closed_at=row.closed_at,
        emailed_day=row.emailed_day,
    )


def _facts_row(facts: OrderFacts) -> dict:
    return {
        "order_id": facts.order_id,
        "known": facts.known,
        "company_id": facts.company_id,
        "parent_order_id": facts.parent_order_id,
        "customer": json.dumps(facts.customer, sort_keys=True) if facts.customer is not None else None,
        "order_date": facts.order_date,
        "lines": json.dumps({k: [v.sku, v.name] for k, v in facts.lines.items()}, sort_keys=True),
        "last_change": json.dumps(facts.last_change, sort_keys=True) if facts.last_change else None,
        "closed_at": facts.closed_at,
        "emailed_day": facts.emailed_day,
    }


def _notification(row) -> Notification:
    return Notification(
        notification_id=row.notification_id,
        event_id=row.event_id,
        order_id=row.order_id,
        company_id=row.company_id,
        template=row.template,
        status=row.status,
        event_time=row.event_time,
        change=json.loads(row.change),
        last_error=row.last_error,
        scenario=row.scenario,
    )


def _notification_row(n: Notification, now: float) -> dict:
    return {
        "notification_id": n.notification_id,
        "event_id": n.event_id,
        "scenario": n.scenario,
        "order_id": n.order_id,
        "company_id": n.company_id,
        "template": n.template,
        "status": n.status,
        "event_time": n.event_time,
        "change": json.dumps(n.change, sort_keys=True),
        "attempts": 0,
        "next_attempt_at": None,
        "claimed_by": None,
        "claimed_at": None,
        "last_error": n.last_error,
        "message_id": None,
        "recipient": None,
        "updated_at": now,
    }

