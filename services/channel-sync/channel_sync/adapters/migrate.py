"""Channel-sync's schema: its own Alembic migrations and version table, so it lives next to
the recalculator's tables in one database or schema."""

from __future__ import annotations

from pathlib import Path

from backorders_platform.migrations import MigrationSet

VERSION_TABLE = "channel_sync_alembic_version"
MIGRATIONS_SET = MigrationSet(Path(__file__).with_name("migrations"), version_table=VERSION_TABLE, lock_name="chan")
upgrade = MIGRATIONS_SET.upgrade
