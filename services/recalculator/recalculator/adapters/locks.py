"""PostgreSQL advisory locks held for a process's life: one active worker per state.

A session lock lives as long as its connection; PostgreSQL releases it when the connection
ends, also when the process is killed. SQLite (the embedded runtime) has one process by
construction: no lock there.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


def key(purpose: str, schema: str | None) -> int:
    """The lock of one purpose on one state, named after the schema holding it."""
    return int.from_bytes(hashlib.sha256(f"{purpose}:{schema or ''}".encode()).digest()[:7], "big")


async def hold(db: AsyncEngine, lock: int) -> AsyncConnection | None:
    """Wait for the lock; returns the connection holding it (None on SQLite). Keep it open
    for as long as the lock must be held, then `release` it."""
    if db.dialect.name != "postgresql":
        return None
    connection = await db.connect()
    try:
        await connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": lock})
        await connection.commit()
    except BaseException:
        await release(connection)
        raise
    return connection


async def try_hold(db: AsyncEngine, lock: int) -> tuple[bool, AsyncConnection | None]:
    """(taken, connection): taken is False while another process holds the lock."""
    if db.dialect.name != "postgresql":
        return True, None
    connection = await db.connect()
    try:
        taken = (await connection.execute(text("SELECT pg_try_advisory_lock(:id)"), {"id": lock})).scalar_one()
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
