"""Alembic environment of the partitioned stages' table: see `backorders_platform.partitioned`."""

from backorders_platform.migrations import run_environment

run_environment(None)
