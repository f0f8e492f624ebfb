"""Persistence of the recalculator's state through SQLAlchemy's async engine.

The same code serves SQLite (aiosqlite, the embedded default) and PostgreSQL (asyncpg).
Everything one batch of inputs produced — state rows, processed ids, the source position,
outbox events and dead letters — is written in one transaction, so a crash leaves either
all of a batch or none of it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from backorder_events import BackorderSettings, DeadLetter
from backorders_platform.database import (  # append and chunks: also kafka/sharded.py's
    FencedOut,
    dialect_insert,
    upsert,
)
from backorders_platform.database import (
    append_rows as _append,
)
from backorders_platform.database import (
    chunks as _chunks,
)
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..domain.engine import Changes, Engine
from ..processing import held_event
from ..publishing import to_json
from . import migrate
from . import tables as t
from .codec import incoming_doc, load_incoming, load_order, order_row


def outbox_row(event: dict) -> dict:
    """An output CloudEvent as a row of the outbox."""
    return {"event_id": event["id"], "event_type": event["type"], "subject": event["subject"],
            "payload": to_json(event)}


@dataclass(slots=True)
class BatchRows:
    orders: list[dict] = field(default_factory=list)
    # (sku, order_id) of every line of the orders written: they replace the orders' rows in
    # order_skus (the order search's `sku` filter).
    order_skus: list[dict] = field(default_factory=list)
    stock: list[dict] = field(default_factory=list)
    incoming: list[dict] = field(default_factory=list)
    warehouses: list[dict] = field(default_factory=list)
    products: list[dict] = field(default_factory=list)
    sku_backorders: list[dict] = field(default_factory=list)
    sku_positions: list[dict] = field(default_factory=list)
    settings: list[dict] = field(default_factory=list)
    meta: list[dict] = field(default_factory=list)
    processed: list[dict] = field(default_factory=list)
    outbox: list[dict] = field(default_factory=list)
    dead_letters: list[dict] = field(default_factory=list)
    positions: list[dict] = field(default_factory=list)
    # More work for the same transaction: async callables taking the connection (the
    # sharded pipeline's hand-over rows).
    extra: list = field(default_factory=list)
    deleted_stock: list[tuple[str, str]] = field(default_factory=list)
    deleted_incoming: list[str] = field(default_factory=list)
    deleted_positions: list[str] = field(default_factory=list)
    deleted_orders: list[str] = field(default_factory=list)
    # Processed ids applied before this business time are deleted (the dedupe window).
    forget_before: int | None = None
    # The writer's business clock: stamped on its outbox rows and dead letters.
    clock: int | None = None


# Where the outbox relay stores how far it has sent the outbox and the dead letters (rows at
# or before these sequence numbers may be pruned).
OUTBOX_RELAY_SOURCE = "outbox-relay"
DEAD_LETTER_RELAY_SOURCE = "dead-letter-relay"


@dataclass(slots=True)
class Pruned:
    """Rows deleted by one `Repository.prune`."""

    outbox: int = 0
    dead_letters: int = 0


OWNER_KEY = "owner"
VERSION_KEY = "version"  # changed by every batch written (`Repository.version`)


class Repository:
    def __init__(self, db: AsyncEngine, schema: str | None = None) -> None:
        self.db = db
        self.schema = schema

    async def create_schema(self) -> None:
        """Bring the schema to the latest migration."""
        await migrate.upgrade(self.db, self.schema)

    # -- loading -------------------------------------------------------------------------

    async def load(self, engine: Engine, conn: AsyncConnection | None = None) -> str | None:
        """Fill an empty engine with the stored state, read in one snapshot: with `conn`, in
        the caller's transaction (the sharded stages read their state in one snapshot);
        otherwise in a REPEATABLE READ transaction of its own on PostgreSQL (every table as
        of the same moment). Returns the state's version in that snapshot (`version`)."""
        if conn is None:
            async with self.db.connect() as pooled:
                if pooled.dialect.name == "postgresql":
                    pooled = await pooled.execution_options(isolation_level="REPEATABLE READ")
                version = await self._load(pooled, engine)
        else:
            version = await self._load(conn, engine)
        engine.rebuild()
        engine.index_closed()
        engine.take_changes()
        return version

    async def version(self) -> str | None:
        """A token every batch written changes (None before the first): a reader holding an
        engine loaded at this version holds the state as it is."""
        async with self.db.connect() as conn:
            return (await conn.execute(select(t.meta.c.value).where(t.meta.c.key == VERSION_KEY))).scalar()

    @staticmethod
    async def _load(conn: AsyncConnection, engine: Engine) -> str | None:
        row = (await conn.execute(select(t.settings.c.doc))).first()
        if row is not None:
            engine.settings = BackorderSettings.model_validate_json(row.doc)
        for wh in await conn.execute(select(t.warehouses)):
            engine.warehouse_types[wh.warehouse_id] = wh.type
            engine.warehouse_names[wh.warehouse_id] = wh.name
        for product in await conn.execute(select(t.products)):
            engine.product_names[product.sku] = product.name
            if product.replacement_sku:
                engine.replacements[product.sku] = product.replacement_sku
                engine.referrers[product.replacement_sku].add(product.sku)
        for item in await conn.execute(select(t.stock)):
            engine.stock.setdefault(item.sku, {})[item.warehouse_id] = item.qty
        for item in await conn.execute(select(t.incoming)):
            load_incoming(engine, item.sku, item.doc)
        for position in await conn.execute(select(t.sku_positions)):
            engine.positions[position.sku] = (position.available_qty, position.backorder_qty)
        result = await conn.stream(select(t.orders.c.order_id, t.orders.c.doc, t.orders.c.closed_at))
        async for order in result:
            load_order(engine, order.order_id, order.doc, order.closed_at)
        meta = dict((await conn.execute(select(t.meta.c.key, t.meta.c.value))).all())
        engine.last_time = int(meta["last_time"]) if "last_time" in meta else None
        # The business clock: the newest applied input event time ("": none yet).
        engine.clock = int(meta["clock"]) if meta.get("clock") else None
        if "held" in meta:
            held = json.loads(meta["held"])
            engine.held_orders = {k: (v[0], v[1]) for k, v in held["orders"].items()}
            engine.held_totals = held["totals"]
        # Manual actions waiting for their orders, in the order they were held (after the
        # orders: each waits for those of its orders not known).
        for ref in json.loads(meta.get("waiting") or "[]"):
            engine.restore_waiting(held_event(ref), ref)
        result = await conn.stream(
            select(t.processed_events.c.source, t.processed_events.c.event_id,
                   t.processed_events.c.applied_at)
            .order_by(t.processed_events.c.applied_at)
        )
        async for processed in result:
            engine.remember(processed.source, processed.event_id, processed.applied_at)
        return meta.get(VERSION_KEY)

    async def position(self, source: str) -> int | None:
        async with self.db.connect() as conn:
            return (
                await conn.execute(
                    select(t.positions.c.position).where(t.positions.c.source == source)
                )
            ).scalar()

    # -- saving --------------------------------------------------------------------------

    @staticmethod
    def batch_rows(
        engine: Engine,
        changes: Changes,
        outputs: Iterable[dict],
        dead: Iterable[DeadLetter],
        positions: dict[str, int] | None = None,
        times: dict[str, int] | None = None,
    ) -> BatchRows:
        """Snapshot, as rows, everything a batch changed. Taken synchronously, so the engine
        may go on with the next batch while these rows are being written."""
        orders, stock = engine.orders, engine.stock
        rows = BatchRows()
        rows.orders = [order_row(orders[o]) for o in sorted(changes.orders) if o in orders]
        rows.order_skus = [
            {"sku": sku, "order_id": o} for o in sorted(changes.orders) if o in orders
            for sku in sorted({line.sku for line in orders[o].lines.values()})
        ]
        # An order changed but gone was evicted (a closed order past its retention).
        rows.deleted_orders = [o for o in sorted(changes.orders) if o not in orders]
        # A key changed but gone (a SKU handed to another shard) is deleted.
        rows.stock = [
            {"sku": s, "warehouse_id": w, "qty": stock[s][w]}
            for s, w in sorted(changes.stock) if w in stock.get(s, ())
        ]
        rows.deleted_stock = [(s, w) for s, w in sorted(changes.stock) if w not in stock.get(s, ())]
        incoming = engine.incoming
        rows.incoming = [
            {"sku": s, "doc": incoming_doc(incoming[s])} for s in sorted(changes.incoming) if s in incoming
        ]
        rows.deleted_incoming = [s for s in sorted(changes.incoming) if s not in incoming]
        rows.warehouses = [
            {"warehouse_id": w, "type": engine.warehouse_types[w], "name": engine.warehouse_names.get(w)}
            for w in sorted(changes.warehouses)
        ]
        rows.products = [
            {"sku": s, "replacement_sku": engine.replacements.get(s), "name": engine.product_names.get(s)}
            for s in sorted(changes.products)
        ]
        rows.sku_backorders = [{"sku": s, "backorder_qty": engine.totals[s]} for s in sorted(changes.skus)]
        rows.sku_positions = [
            {"sku": s, "available_qty": engine.positions[s][0], "backorder_qty": engine.positions[s][1]}
            for s in sorted(changes.positions) if s in engine.positions
        ]
        rows.deleted_positions = [s for s in sorted(changes.positions) if s not in engine.positions]
        if changes.settings:
            rows.settings = [{"id": 1, "doc": engine.settings.model_dump_json()}]
        if changes.processed:
            # Those still remembered: an id applied and forgotten within one batch is not
            # stored (an event applied again with the same identity later may be).
            remembered = engine.processed
            rows.processed = [
                {"source": key[0], "event_id": key[1], "applied_at": applied_at}
                for key, applied_at in changes.processed
                if remembered.get(key) == applied_at
            ]
        rows.forget_before = changes.forget_before
        if changes.clock and engine.last_time is not None:
            rows.meta.append({"key": "last_time", "value": str(engine.last_time)})
            rows.meta.append({"key": "clock", "value": "" if engine.clock is None else str(engine.clock)})
        rows.clock = engine.clock
        if changes.held:
            held = {"orders": engine.held_orders, "totals": engine.held_totals}
            rows.meta.append({"key": "held", "value": json.dumps(held, sort_keys=True)})
        if changes.waiting:
            # Each waiting action's reference (`processing.held_reference`: its raw input and
            # where it came from), in the order they were held.
            waiting = [item.ref for item in engine.waiting.values()]
            rows.meta.append({"key": "waiting", "value": json.dumps(waiting, sort_keys=True)})
        rows.outbox = [outbox_row(output) for output in outputs]
        rows.dead_letters = [d.model_dump() for d in dead]
        if positions:
            times = times or {}
            rows.positions = [
                {"source": k, "position": v, "stream_time": times.get(k)} for k, v in sorted(positions.items())
            ]
        return rows

    async def save_rows(self, rows: BatchRows, fence: str | None = None,
                        conn: AsyncConnection | None = None) -> None:
        """Write a batch in one transaction. With `fence`, the transaction first checks that
        the state still belongs to that owner (see `claim`), and writes nothing otherwise.
        With `conn` (a connection the caller holds, outside any transaction), over it."""
        if conn is None:
            async with self.db.begin() as pooled:
                await self._save_rows(pooled, rows, fence)
        else:
            async with conn.begin():
                await self._save_rows(conn, rows, fence)

    async def _save_rows(self, conn: AsyncConnection, rows: BatchRows, fence: str | None) -> None:
        if fence is not None:
            claimed = await conn.execute(
                update(t.meta)
                .where(t.meta.c.key == OWNER_KEY, t.meta.c.value == fence)
                .values(value=fence)
            )
            if claimed.rowcount != 1:
                raise FencedOut("another worker has taken over this state")
        await self.write_rows(conn, rows)

    async def erase(self) -> None:
        """Delete every row of the state, in one transaction (the schema stays)."""
        async with self.db.begin() as conn:
            for table in reversed(t.metadata.sorted_tables):
                await conn.execute(table.delete())

    async def claim(self) -> str:
        """Make this process the owner of the state: later `save_rows(fence=...)` of any
        earlier owner fail, even one that still believes it is active."""
        owner = uuid.uuid4().hex
        async with self.db.begin() as conn:
            await upsert(conn, t.meta, [{"key": OWNER_KEY, "value": owner}], ["key"])
        return owner

    async def write_rows(self, conn: AsyncConnection, rows: BatchRows) -> None:
        """All of a batch, inside the caller's transaction."""
        await upsert(conn, t.orders, rows.orders, ["order_id"])
        for chunk in _chunks(rows.deleted_orders):
            await conn.execute(t.orders.delete().where(t.orders.c.order_id.in_(chunk)))
        written = [row["order_id"] for row in rows.orders]
        for chunk in _chunks(written + rows.deleted_orders):
            await conn.execute(t.order_skus.delete().where(t.order_skus.c.order_id.in_(chunk)))
        if rows.order_skus:
            await _append(conn, t.order_skus, rows.order_skus)
        if rows.forget_before is not None:  # before the new ids: one may be applied again
            await conn.execute(
                t.processed_events.delete().where(t.processed_events.c.applied_at < rows.forget_before)
            )
        stamp = rows.clock if rows.clock is not None else 0
        for new_rows in (rows.outbox, rows.dead_letters):
            for row in new_rows:
                row.setdefault("recorded_at", stamp)
        await upsert(conn, t.stock, rows.stock, ["sku", "warehouse_id"])
        for sku, warehouse in rows.deleted_stock:
            await conn.execute(t.stock.delete().where(t.stock.c.sku == sku, t.stock.c.warehouse_id == warehouse))
        await upsert(conn, t.incoming, rows.incoming, ["sku"])
        for chunk in _chunks(rows.deleted_incoming):
            await conn.execute(t.incoming.delete().where(t.incoming.c.sku.in_(chunk)))
        if rows.deleted_positions:
            await conn.execute(t.sku_positions.delete().where(t.sku_positions.c.sku.in_(rows.deleted_positions)))
        await upsert(conn, t.warehouses, rows.warehouses, ["warehouse_id"])
        await upsert(conn, t.products, rows.products, ["sku"])
        await upsert(conn, t.sku_backorders, rows.sku_backorders, ["sku"])
        await upsert(conn, t.sku_positions, rows.sku_positions, ["sku"])
        await upsert(conn, t.settings, rows.settings, ["id"])
        # A new version with every batch, for readers that keep a loaded engine (the API).
        await upsert(conn, t.meta, rows.meta + [{"key": VERSION_KEY, "value": uuid.uuid4().hex}], ["key"])
        for table, new_rows in (
            (t.processed_events, rows.processed), (t.outbox, rows.outbox), (t.dead_letters, rows.dead_letters),
        ):
            if new_rows:
                await _append(conn, table, new_rows)
        await upsert(conn, t.positions, rows.positions, ["source"])
        for work in rows.extra:
            await work(conn)

    # -- pruning ---------------------------------------------------------------------------

    async def prune(
        self,
        outbox_retention: timedelta,
        dead_letter_retention: timedelta,
        *,
        chunk: int = 1000,
        outbox_source: str = OUTBOX_RELAY_SOURCE,
        dead_letter_source: str = DEAD_LETTER_RELAY_SOURCE,
    ) -> Pruned:
        """Delete the outbox rows and dead letters that the relay has sent (at or before the
        position it stored under `outbox_source` / `dead_letter_source`) and that were
        recorded more than their retention before the state's business clock. Never what the
        relay has not sent: without a stored position nothing goes. In transactions of at
        most `chunk` rows, apart from the batches: run it now and then, not per batch."""
        clock = await self._clock()
        if clock is None:
            return Pruned()
        return Pruned(
            await self._prune_table(t.outbox, outbox_source, clock - _micros(outbox_retention), chunk),
            await self._prune_table(t.dead_letters, dead_letter_source,
                                    clock - _micros(dead_letter_retention), chunk),
        )

    async def _clock(self) -> int | None:
        async with self.db.connect() as conn:
            value = (await conn.execute(select(t.meta.c.value).where(t.meta.c.key == "clock"))).scalar()
        return int(value) if value else None

    async def _prune_table(self, table, source: str, cutoff: int, chunk: int) -> int:
        relayed = await self.position(source)
        if not relayed:
            return 0
        seq, recorded_at = table.c.seq, table.c.recorded_at
        async with self.db.connect() as conn:
            # Rows are written in the order of the writer's business clock, so the first row
            # recorded at or after the cutoff bounds the old ones (an index lookup, not a scan
            # of the rows kept).
            first_young = (await conn.execute(
                select(func.min(seq)).where(recorded_at == (
                    select(func.min(recorded_at)).where(recorded_at >= cutoff).scalar_subquery()
                ))
            )).scalar()
            last = (await conn.execute(select(func.max(seq)))).scalar()
        if last is None:
            return 0
        # The newest row always stays: SQLite numbers a new row after the highest one left,
        # so with every row gone numbers would start again below the relay's position (and
        # `backorders status` reads the outbox's length from it).
        upto = min(relayed, last - 1)
        if first_young is not None:
            upto = min(upto, first_young - 1)
        deleted = 0
        while True:
            async with self.db.begin() as conn:
                doomed = select(seq).where(seq <= upto, recorded_at < cutoff).order_by(seq).limit(chunk)
                count = (await conn.execute(table.delete().where(seq.in_(doomed)))).rowcount
            deleted += count
            if count < chunk:
                return deleted

    # -- reading for operators ---------------------------------------------------------------

    async def outbox_rows(self, after_seq: int, limit: int, conn: AsyncConnection | None = None) -> list:
        """Outbox rows after `after_seq`, oldest first: (seq, event_id, event_type, subject,
        payload)."""
        query = (
            select(t.outbox.c.seq, t.outbox.c.event_id, t.outbox.c.event_type,
                   t.outbox.c.subject, t.outbox.c.payload)
            .where(t.outbox.c.seq > after_seq)
            .order_by(t.outbox.c.seq)
            .limit(limit)
        )
        return await self._read_all(query, conn)

    async def dead_letter_rows(self, after_seq: int, limit: int, conn: AsyncConnection | None = None) -> list:
        """Dead-letter rows after `after_seq`, oldest first, every column."""
        query = (
            select(t.dead_letters).where(t.dead_letters.c.seq > after_seq)
            .order_by(t.dead_letters.c.seq).limit(limit)
        )
        return await self._read_all(query, conn)

    async def _read_all(self, query, conn: AsyncConnection | None) -> list:
        """Every row of a query, over `conn` when given (a caller's own connection, in
        autocommit), else over a pooled one."""
        if conn is not None:
            return (await conn.execute(query)).all()
        async with self.db.connect() as pooled:
            return (await pooled.execute(query)).all()

    async def positions(self, prefix: str = "") -> dict[str, int]:
        query = select(t.positions.c.source, t.positions.c.position)
        if prefix:
            query = query.where(t.positions.c.source.startswith(prefix))
        async with self.db.connect() as conn:
            return dict((await conn.execute(query)).all())

    async def clock_positions(self) -> dict[str, tuple[int, int | None]]:
        """Per source: (position, effective time reached there, µs; None when not kept)."""
        query = select(t.positions.c.source, t.positions.c.position, t.positions.c.stream_time)
        async with self.db.connect() as conn:
            return {row.source: (row.position, row.stream_time) for row in await conn.execute(query)}

    async def save_position(self, source: str, position: int, *, conn: AsyncConnection | None = None) -> int:
        """Move a relay's stored position forward: an upsert that never lowers it, so a relay
        that writes an older position after a newer one was stored (a slow one, or a second
        one) cannot move it back. Returns the position stored now. With `conn` (a caller's own
        connection in autocommit, with the session settings it wants: the relay's does not
        wait for the disk) the one statement goes over it."""
        if conn is not None:
            return await self._advance(conn, source, position)
        async with self.db.begin() as pooled:
            return await self._advance(pooled, source, position)

    @staticmethod
    async def _advance(conn: AsyncConnection, source: str, position: int) -> int:
        stmt = dialect_insert(conn.dialect.name, t.positions).values(source=source, position=position)
        larger = func.greatest if conn.dialect.name == "postgresql" else func.max  # SQLite: max(a, b)
        stmt = stmt.on_conflict_do_update(
            index_elements=["source"], set_={"position": larger(t.positions.c.position, stmt.excluded.position)}
        ).returning(t.positions.c.position)
        return (await conn.execute(stmt)).scalar_one()

    async def dead_letter_records(self) -> list[DeadLetter]:
        async with self.db.connect() as conn:
            rows = await conn.execute(select(t.dead_letters).order_by(t.dead_letters.c.seq))
            return [DeadLetter.model_validate(dict(row._mapping)) for row in rows]


def _micros(window: timedelta) -> int:
    return window // timedelta(microseconds=1)
