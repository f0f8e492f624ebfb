"""Alembic environment of the recalculator: see `recalculator.adapters.migrate.run_environment`."""

from recalculator.adapters.migrate import run_environment
from recalculator.adapters.tables import metadata

run_environment(metadata)
