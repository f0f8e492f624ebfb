"""One channel-sync at a time per state (PostgreSQL only).

The projection of a channel-sync worker covers every partition of its topics, so a second
worker in the same consumer group would be given some of them, each worker would miss the
other's records and push rows made from half the facts. The worker therefore holds a
session advisory lock named after its schema (`"channel-sync:" + schema`) for its whole
life, taken before its Kafka consumer starts: a second worker waits for it as a standby and
takes over when the first one goes away (PostgreSQL releases a session lock when its
connection ends, also when the process is killed). `backorders channels push` only tries
the lock and refuses while a worker holds it. SQLite (the embedded runtime) has one process
by construction: no lock.
"""

from __future__ import annotations

from backorders_platform import locks
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

release = locks.release


def lock_id(schema: str | None) -> int:
    return locks.key("channel-sync", schema)


async def hold(db: AsyncEngine, schema: str | None) -> AsyncConnection | None:
    return await locks.hold(db, lock_id(schema))


async def try_hold(db: AsyncEngine, schema: str | None) -> tuple[bool, AsyncConnection | None]:
    return await locks.try_hold(db, lock_id(schema))
