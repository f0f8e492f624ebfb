"""Schema management: Alembic migrations, run on start by every runtime.

On PostgreSQL the upgrade holds an advisory lock, so workers starting together migrate
once; an optional schema keeps a database's state apart (replays into a fresh schema, tests).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_ID = 0x6261636B  # "back"
BASELINE = "0001"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _upgrade(connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    tables = set(inspect(connection).get_table_names())
    current = MigrationContext.configure(connection).get_current_revision()
    if "orders" in tables and current is None:
        # A database made before the schema was under migrations holds exactly revision
        # 0001: adopt it instead of failing on tables that exist.
        command.stamp(config, BASELINE)
    command.upgrade(config, "head")


async def upgrade(db: AsyncEngine, schema: str | None = None) -> None:
    async with db.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
            if schema:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await conn.run_sync(_upgrade)


async def drop_schema(url: str, schema: str) -> None:
    """Remove a PostgreSQL schema and everything in it (replays and tests clean up with it)."""
    from .repository import make_engine

    db = make_engine(url)
    try:
        async with db.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await db.dispose()
