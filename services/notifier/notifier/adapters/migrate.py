"""The notifier's schema: its own Alembic migrations and version table, so it shares a
database or schema with the recalculator."""

from __future__ import annotations

from pathlib import Path

from backorders_platform.migrations import MigrationSet

VERSION_TABLE = "notifier_alembic_version"
MIGRATIONS_SET = MigrationSet(Path(__file__).with_name("migrations"), version_table=VERSION_TABLE, lock_name="notf")
upgrade = MIGRATIONS_SET.upgrade
