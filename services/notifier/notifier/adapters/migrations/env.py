"""Alembic environment of the notifier: see `recalculator.adapters.migrate.run_environment`."""

from notifier.adapters.tables import metadata
from recalculator.adapters.migrate import run_environment

run_environment(metadata)
