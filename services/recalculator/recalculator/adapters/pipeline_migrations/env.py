"""Alembic environment of the sharded recalculator's pipeline tables."""

from recalculator.adapters.migrate import run_environment
from recalculator.adapters.pipeline_tables import metadata

run_environment(metadata)
