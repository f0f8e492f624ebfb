"""Persistence of the recalculator's state through SQLAlchemy's async engine.

The same code serves SQLite (aiosqlite, the embedded default) and PostgreSQL (asyncpg).
Everything one batch of inputs produced — state rows, processed ids, the source position,
outbox events and dead letters — is written in one transaction, so a crash leaves either
all of a batch or none of it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from backorder_events import BackorderSettings, DeadLetter
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ..domain.engine import Changes, Engine
from ..publishing import to_json
from . import tables as t
from .codec import load_order, order_row


def make_engine(url: str) -> AsyncEngine:
    db = create_async_engine(url)
    if db.dialect.name == "sqlite":

        @event.listens_for(db.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            # WAL with synchronous=NORMAL survives a killed process (not a power cut).
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return db


def _insert(dialect: str, table):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


async def _upsert(conn: AsyncConnection, table, rows: Sequence[dict], keys: Sequence[str]):
    if not rows:
        return
    stmt = _insert(conn.dialect.name, table)
    updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    if updates:
        stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=updates)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    await conn.execute(stmt, list(rows))


class Repository:
    def __init__(self, db: AsyncEngine) -> None:
        self.db = db

    async def create_schema(self) -> None:
        async with self.db.begin() as conn:
            await conn.run_sync(t.metadata.create_all)

    # -- loading -------------------------------------------------------------------------

    async def load(self, engine: Engine) -> None:
        """Fill an empty engine with the stored state."""
        async with self.db.connect() as conn:
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
            result = await conn.stream(select(t.orders.c.order_id, t.orders.c.doc))
            async for order in result:
                load_order(engine, order.order_id, order.doc)
            clock = (
                await conn.execute(select(t.meta.c.value).where(t.meta.c.key == "last_time"))
            ).scalar()
            engine.last_time = None if clock is None else int(clock)
            result = await conn.stream(select(t.processed_events.c.event_id))
            async for processed in result:
                engine.processed.add(processed.event_id)
        engine.rebuild()
        engine.take_changes()

    async def position(self, source: str) -> int | None:
        async with self.db.connect() as conn:
            return (
                await conn.execute(
                    select(t.positions.c.position).where(t.positions.c.source == source)
                )
            ).scalar()

    # -- saving --------------------------------------------------------------------------

    async def save_batch(
        self,
        engine: Engine,
        changes: Changes,
        outputs: Iterable[dict],
        dead: Iterable[DeadLetter],
        source: str | None = None,
        position: int | None = None,
    ) -> None:
        async with self.db.begin() as conn:
            await self.write_batch(conn, engine, changes, outputs, dead, source, position)

    async def write_batch(
        self,
        conn: AsyncConnection,
        engine: Engine,
        changes: Changes,
        outputs: Iterable[dict],
        dead: Iterable[DeadLetter],
        source: str | None = None,
        position: int | None = None,
    ) -> None:
        orders = engine.orders
        await _upsert(conn, t.orders, [order_row(orders[o]) for o in sorted(changes.orders)], ["order_id"])
        stock = engine.stock
        await _upsert(
            conn, t.stock,
            [{"sku": s, "warehouse_id": w, "qty": stock[s][w]} for s, w in sorted(changes.stock)],
            ["sku", "warehouse_id"],
        )
        await _upsert(
            conn, t.warehouses,
            [
                {"warehouse_id": w, "type": engine.warehouse_types[w], "name": engine.warehouse_names.get(w)}
                for w in sorted(changes.warehouses)
            ],
            ["warehouse_id"],
        )
        await _upsert(
            conn, t.products,
            [
                {"sku": s, "replacement_sku": engine.replacements.get(s), "name": engine.product_names.get(s)}
                for s in sorted(changes.products)
            ],
            ["sku"],
        )
        await _upsert(
            conn, t.sku_backorders,
            [{"sku": s, "backorder_qty": engine.totals[s]} for s in sorted(changes.skus)],
            ["sku"],
        )
        if changes.settings:
            await _upsert(conn, t.settings, [{"id": 1, "doc": engine.settings.model_dump_json()}], ["id"])
        if changes.processed:
            await _upsert(conn, t.meta, [{"key": "last_time", "value": str(engine.last_time)}], ["key"])
            await conn.execute(
                t.processed_events.insert(), [{"event_id": e} for e in changes.processed]
            )
        rows = [
            {"event_id": o["id"], "event_type": o["type"], "subject": o["subject"], "payload": to_json(o)}
            for o in outputs
        ]
        if rows:
            await conn.execute(t.outbox.insert(), rows)
        records = [d.model_dump() for d in dead]
        if records:
            await conn.execute(t.dead_letters.insert(), records)
        if source is not None and position is not None:
            await _upsert(conn, t.positions, [{"source": source, "position": position}], ["source"])

    # -- reading for operators ---------------------------------------------------------------

    async def count(self, table) -> int:
        async with self.db.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(table))).scalar_one()

    async def outbox_events(self, after_seq: int = 0, limit: int | None = None) -> list[dict]:
        query = select(t.outbox.c.seq, t.outbox.c.payload).where(t.outbox.c.seq > after_seq)
        query = query.order_by(t.outbox.c.seq)
        if limit:
            query = query.limit(limit)
        async with self.db.connect() as conn:
            return [json.loads(row.payload) for row in await conn.execute(query)]

    async def dead_letter_records(self) -> list[DeadLetter]:
        async with self.db.connect() as conn:
            rows = await conn.execute(select(t.dead_letters).order_by(t.dead_letters.c.seq))
            return [DeadLetter.model_validate(dict(row._mapping)) for row in rows]
