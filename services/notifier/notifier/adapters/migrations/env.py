"""Alembic environment of the notifier: see `backorders_platform.migrations.run_environment`."""

from backorders_platform.migrations import run_environment
from notifier.adapters.tables import metadata

run_environment(metadata)
