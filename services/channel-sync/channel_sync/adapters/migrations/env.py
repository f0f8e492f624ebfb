"""Alembic environment of channel-sync: see `recalculator.adapters.migrate.run_environment`."""

from channel_sync.adapters.tables import metadata
from recalculator.adapters.migrate import run_environment

run_environment(metadata)
