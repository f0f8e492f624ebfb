"""Alembic environment of channel-sync: see `backorders_platform.migrations.run_environment`."""

from backorders_platform.migrations import run_environment
from channel_sync.adapters.tables import metadata

run_environment(metadata)
