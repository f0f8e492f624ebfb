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

import hashlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


def lock_id(schema: str | None) -> int:
    return int.from_bytes(hashlib.sha256(f"channel-sync:{schema or ''}".encode()).digest()[:7], "big")


async def hold(db: AsyncEngine, schema: str | None) -> AsyncConnection | None:
    """Wait for the lock; returns the connection holding it (None on SQLite). Keep it open
    for as long as the lock must be held, then `release` it."""
    if db.dialect.name != "postgresql":
        return None
    connection = await db.connect()
    try:
        await connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": lock_id(schema)})
        await connection.commit()
    except BaseException:
        await release(connection)
        raise
    return connection


async def try_hold(db: AsyncEngine, schema: str | None) -> tuple[bool, AsyncConnection | None]:
    """(taken, connection): taken is False while another process holds the lock."""
    if db.dialect.name != "postgresql":
        return True, None
    connection = await db.connect()
    try:
        taken = (await connection.execute(
            text("SELECT pg_try_advisory_lock(:id)"), {"id": lock_id(schema)}
        )).scalar_one()
        await connection.commit()
    except BaseException:
        await release(connection)
        raise
    if not taken:
        await release(connection)
        return False, None
    return True, connection


async def release(connection: AsyncConnection | None) -> None:
    """Drop the lock's connection for good: returned to the pool, the session (and the lock
    it holds) would live on."""
    if connection is None:
        return
    try:
        await connection.invalidate()
        await connection.close()
    except Exception:  # noqa: BLE001, S110 - the connection is already gone
        pass
