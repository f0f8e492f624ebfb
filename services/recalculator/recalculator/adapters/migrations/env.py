"""Alembic environment: migrations run on a connection handed over by
`recalculator.adapters.migrate` (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from alembic import context
from recalculator.adapters.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - a usage error
    raise RuntimeError("run migrations through recalculator.adapters.migrate.upgrade()")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copy
)
with context.begin_transaction():
    context.run_migrations()
