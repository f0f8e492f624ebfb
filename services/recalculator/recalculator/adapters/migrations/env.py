"""Alembic environment of the recalculator: see `backorders_platform.migrations.run_environment`."""

from backorders_platform.migrations import run_environment
from recalculator.adapters.tables import metadata

run_environment(metadata)
