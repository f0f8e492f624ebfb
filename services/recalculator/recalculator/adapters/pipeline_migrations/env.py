"""Alembic environment of the sharded recalculator's pipeline tables."""

from backorders_platform.migrations import run_environment
from recalculator.adapters.pipeline_tables import metadata

run_environment(metadata)
