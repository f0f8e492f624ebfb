"""The recalculator's migrations (its state, and the sharded pipeline's hand-over tables),
run through the platform's `MigrationSet`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from backorders_platform.migrations import MigrationSet
from sqlalchemy import inspect

BASELINE = "0001"


def _adopt_unversioned(connection, config: Config) -> None:
    """A database made before the schema was under migrations holds exactly revision 0001:
    adopt it instead of failing on tables that exist."""
    tables = set(inspect(connection).get_table_names())
    if "orders" in tables and MigrationContext.configure(connection).get_current_revision() is None:
        command.stamp(config, BASELINE)


RECALCULATOR = MigrationSet(
    Path(__file__).with_name("migrations"), version_table="alembic_version", lock_name="back",
    adopt=_adopt_unversioned,
)
# The sharded recalculator's hand-over tables (pipeline_tables.py), in the pipeline schema.
PIPELINE = MigrationSet(
    Path(__file__).with_name("pipeline_migrations"), version_table="pipeline_version",
    lock_name="pipe",
)
MIGRATIONS = RECALCULATOR.folder
alembic_config = RECALCULATOR.alembic_config
upgrade = RECALCULATOR.upgrade
