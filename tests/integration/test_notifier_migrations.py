"""The notifier's migrations build exactly its tables, next to the recalculator's in the same
database (or schema), each with its own Alembic version table; a second upgrade is a no-op."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from backorders_platform.database import make_engine
from notifier.adapters import tables
from notifier.adapters.migrate import VERSION_TABLE
from notifier.adapters.store import Store
from recalculator.adapters.repository import Repository
from sqlalchemy import inspect, text


def _differences(connection):
    def ours(name, type_, parent_names):
        return type_ != "table" or (name.startswith("notifier_") and name != VERSION_TABLE)

    context = MigrationContext.configure(connection, opts={"include_name": ours})
    return compare_metadata(context, tables.metadata)


async def test_the_notifier_tables_live_beside_the_recalculator_tables(database):
    db = make_engine(database.url, database.schema)
    try:
        await Store(db, database.schema).create_schema()  # the notifier first, on an empty database
        await Repository(db, database.schema).create_schema()
        await Store(db, database.schema).create_schema()  # idempotent
        async with db.connect() as conn:
            differences = await conn.run_sync(_differences)
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            notifier_version = (await conn.execute(text(f"select version_num from {VERSION_TABLE}"))).scalar_one()
            recalculator_versions = (await conn.execute(text("select count(*) from alembic_version"))).scalar_one()
        assert differences == [], f"migrations and tables.py differ: {differences}"
        assert names >= {t.name for t in tables.metadata.sorted_tables} | {VERSION_TABLE, "alembic_version", "outbox"}
        assert notifier_version == "n0004" and recalculator_versions == 1
    finally:
        await db.dispose()
