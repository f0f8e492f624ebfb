"""PostgreSQL advisory locks held for a process's life: one active worker per state.

A session lock lives as long as its connection; PostgreSQL releases it when the connection
ends, also when the process is killed. SQLite (the embedded runtime) has one process by
construction: no lock there.

A standby waits for the lock by trying it every POLL_SECONDS (`pg_try_advisory_lock`)
rather than blocking in `pg_advisory_lock`: a wait blocked in the server could not be
interrupted, so a standby could not be stopped. A poll is a short query, the wait sleeps
between polls, and it ends at once when it is cancelled or when the stop event it was given
(or the one set by `waits_end_with` around it) is set; the connection is then closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Iterator
from contextvars import ContextVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

POLL_SECONDS = 0.2

_stopping: ContextVar[asyncio.Event | None] = ContextVar("backorders_lock_wait_stop", default=None)


class WaitStopped(Exception):
    """A wait for a lock given up because the process is stopping."""


@contextlib.contextmanager
def waits_end_with(stop: asyncio.Event) -> Iterator[None]:
    """Within this block, and in the tasks started in it, every wait for a lock (`hold`)
    ends with WaitStopped once `stop` is set: a process told to stop while a standby stops
    waiting, even inside code that does not pass the event along."""
    token = _stopping.set(stop)
    try:
        yield
    finally:
        _stopping.reset(token)


def key(purpose: str, schema: str | None) -> int:
    """The lock of one purpose on one state, named after the schema holding it."""
    return int.from_bytes(hashlib.sha256(f"{purpose}:{schema or ''}".encode()).digest()[:7], "big")


async def hold(db: AsyncEngine, lock: int, *, stop: asyncio.Event | None = None,
               poll: float = POLL_SECONDS) -> AsyncConnection | None:
    """Wait for the lock; returns the connection holding it (None on SQLite). Keep it open
    for as long as the lock must be held, then `release` it. The wait ends with WaitStopped
    when `stop` (by default the event of the enclosing `waits_end_with`) is set, and at once
    when the task is cancelled."""
    if db.dialect.name != "postgresql":
        return None
    stop = stop if stop is not None else _stopping.get()
    connection = await db.connect()
    try:
        while True:
            if stop is not None and stop.is_set():
                raise WaitStopped("stopped while waiting for the lock")
            taken = (await connection.execute(text("SELECT pg_try_advisory_lock(:id)"), {"id": lock})).scalar_one()
            await connection.commit()
            if taken:
                return connection
            if stop is None:
                await asyncio.sleep(poll)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), poll)
    except BaseException:
        await release(connection)
        raise


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
