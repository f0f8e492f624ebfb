"""Schema management: Alembic migrations, run on start by every runtime.

On PostgreSQL the upgrade holds an advisory lock, so workers starting together migrate
once; an optional schema keeps a database's state apart (replays into a fresh schema, tests).
Each service names its own migrations folder and version table (`MigrationSet`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from . import schema_names
from .database import make_engine

_locks: dict[int, asyncio.Lock] = {}


def _process_lock() -> asyncio.Lock:
    loop = id(asyncio.get_running_loop())
    lock = _locks.get(loop)
    if lock is None:
        lock = _locks[loop] = asyncio.Lock()
    return lock


class MigrationSet:
    """One service's migrations: their folder, the table recording the revision (each
    service has its own, so services share a database or schema), and the advisory lock
    that makes processes starting together migrate once."""

    def __init__(self, folder: Path, *, version_table: str, lock_name: str, adopt=None) -> None:
        self.folder = folder
        self.version_table = version_table
        self.lock_id = int.from_bytes(lock_name.encode()[:4].ljust(4, b"\0"), "big")
        self.adopt = adopt  # (connection, config) -> None, before the upgrade

    def alembic_config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(self.folder))
        config.attributes["version_table"] = self.version_table
        return config

    def _upgrade(self, connection) -> None:
        config = self.alembic_config()
        config.attributes["connection"] = connection
        if self.adopt is not None:
            self.adopt(connection, config)
        command.upgrade(config, "head")

    async def upgrade(self, db: AsyncEngine, schema: str | None = None) -> None:
        # Alembic keeps the running migration in module globals: migrations of several
        # schemas started together in one process (the stages of a sharded worker) go one
        # at a time.
        if schema:
            schema_names.checked(schema)
        async with _process_lock():
            await self._upgrade_locked(db, schema)

    async def _upgrade_locked(self, db: AsyncEngine, schema: str | None) -> None:
        async with db.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": self.lock_id})
                if schema:
                    await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema_names.quoted(schema)}"))
            await conn.run_sync(self._upgrade)


def run_environment(metadata) -> None:
    """The body of every service's Alembic `env.py`: run the migrations on the connection
    handed over by `MigrationSet.upgrade`, recorded in that service's version table."""
    from alembic import context

    connection = context.config.attributes.get("connection")
    if connection is None:  # pragma: no cover - a usage error
        raise RuntimeError("run migrations through the service's adapters.migrate.upgrade()")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=context.config.attributes.get("version_table", "alembic_version"),
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copy
    )
    with context.begin_transaction():
        context.run_migrations()


async def drop_schema(url: str, schema: str) -> None:
    """Remove a PostgreSQL schema and everything in it (replays and tests clean up with it)."""
    statement = text(f"DROP SCHEMA IF EXISTS {schema_names.quoted(schema)} CASCADE")
    db = make_engine(url)
    try:
        async with db.begin() as conn:
            await conn.execute(statement)
    finally:
        await db.dispose()
