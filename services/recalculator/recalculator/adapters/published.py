"""The recalculator's outbox read as its published events (`backorders_platform.published`):
what the embedded notifier and channel-sync take in, by sequence number, without knowing
the table."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection

from backorders_platform.published import PublishedEvent
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from .tables import outbox


class OutboxEvents:
    def __init__(self, db: AsyncEngine) -> None:
        self.db = db

    async def after(
        self, position: int, *, types: Collection[str] | None = None, batch: int = 1000
    ) -> AsyncIterator[list[PublishedEvent]]:
        async with self.db.connect() as conn:
            if not await conn.run_sync(lambda sync: inspect(sync).has_table(outbox.name)):
                return  # no recalculator in this database
        while True:
            query = select(outbox.c.seq, outbox.c.event_type, outbox.c.payload).where(outbox.c.seq > position)
            if types is not None:
                query = query.where(outbox.c.event_type.in_(list(types)))
            async with self.db.connect() as conn:
                rows = (await conn.execute(query.order_by(outbox.c.seq).limit(batch))).all()
            if not rows:
                return
            yield [PublishedEvent(*row) for row in rows]
            position = rows[-1].seq
