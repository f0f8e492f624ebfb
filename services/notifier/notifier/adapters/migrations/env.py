"""Alembic environment of the notifier: migrations run on a connection handed over by
`notifier.adapters.migrate`, recorded in their own version table."""

from __future__ import annotations

from alembic import context
from notifier.adapters.migrate import VERSION_TABLE
from notifier.adapters.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - a usage error
    raise RuntimeError("run migrations through notifier.adapters.migrate.upgrade()")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
