"""The migrations build exactly the tables the code declares, on every backend, and a
second upgrade is a no-op."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from recalculator.adapters import tables
from recalculator.adapters.repository import Repository, make_engine
from sqlalchemy import inspect


def _differences(connection):
    context = MigrationContext.configure(connection)
    return compare_metadata(context, tables.metadata)


async def test_migrations_match_the_table_definitions(database):
    db = make_engine(database.url, database.schema)
    try:
        repository = Repository(db, database.schema)
        await repository.create_schema()
        await repository.create_schema()  # idempotent
        async with db.connect() as conn:
            differences = await conn.run_sync(_differences)
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert differences == [], f"migrations and tables.py differ: {differences}"
        assert names >= {t.name for t in tables.metadata.sorted_tables} | {"alembic_version"}
    finally:
        await db.dispose()
