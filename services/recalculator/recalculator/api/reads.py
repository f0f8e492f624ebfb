"""How the API reads the state: each request's queries in one read transaction (a page and
its total agree), as a plain function of a synchronous connection.

On SQLite the function runs on a worker thread over the standard library's driver: one hop
to the thread per request, where the async driver (aiosqlite, one thread hop per statement,
and more for each checkout, BEGIN and ROLLBACK) took about 1.7 ms for a one-row query against
0.17 ms (docs/benchmarks.md). SQLite works outside the GIL, so two requests' queries can run
on two cores. On PostgreSQL it runs over the async engine's connection (asyncpg) through
`run_sync`, without a thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread
from sqlalchemy import Connection, create_engine, event
from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")

# Threads reading SQLite at once, per server process: about the cores. More only take turns
# at the GIL (a thread may hold it 5 ms), and a burst of requests would open connections
# with cold caches; beyond them, requests wait their turn in the event loop.
READ_THREADS = 4


class StateReads:
    def __init__(self, db: AsyncEngine) -> None:
        self.db = db
        self.sync = None
        self.limiter: anyio.CapacityLimiter | None = None
        if db.dialect.name == "sqlite":
            url = db.url.set(drivername="sqlite")
            in_memory = url.database in (None, "", ":memory:")  # (the OpenAPI document's app)
            self.sync = create_engine(url, **({} if in_memory else {"pool_size": READ_THREADS, "max_overflow": 0}))

            @event.listens_for(self.sync, "connect")
            def _connect(dbapi_connection, _record):  # pragma: no cover - trivial
                # BEGIN is sent by SQLAlchemy (below): the reads of one request see one snapshot.
                dbapi_connection.isolation_level = None

            @event.listens_for(self.sync, "begin")
            def _begin(connection):  # pragma: no cover - trivial
                connection.exec_driver_sql("BEGIN")

    async def read(self, work: Callable[[Connection], T]) -> T:
        """`work(connection)` in one read transaction."""
        if self.sync is not None:
            if self.limiter is None:  # made in the event loop
                self.limiter = anyio.CapacityLimiter(READ_THREADS)
            return await anyio.to_thread.run_sync(self._read_sync, work, limiter=self.limiter)
        async with self.db.connect() as conn:
            return await conn.run_sync(work)

    def _read_sync(self, work: Callable[[Connection], T]) -> T:
        with self.sync.connect() as conn:
            return work(conn)

    def dispose(self) -> None:
        if self.sync is not None:
            self.sync.dispose()
