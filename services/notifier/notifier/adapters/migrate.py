"""The notifier's schema: its own Alembic migrations and version table
(`notifier_alembic_version`), so it shares a database or schema with the recalculator.
On PostgreSQL the upgrade holds an advisory lock: processes starting together migrate once."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "notifier_alembic_version"
_LOCK_ID = 0x6E6F7466  # "notf"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _upgrade(connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def upgrade(db: AsyncEngine, schema: str | None = None) -> None:
    async with db.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
            if schema:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await conn.run_sync(_upgrade)
