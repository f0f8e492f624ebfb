"""Channel-sync's migrations build exactly its table definitions, next to the recalculator's
in the same database or schema, each with its own version table."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from backorders_platform.database import make_engine
from channel_sync.adapters import tables as channel_tables
from channel_sync.adapters.migrate import VERSION_TABLE
from channel_sync.adapters.store import Store
from recalculator.adapters import tables as recalculator_tables
from recalculator.adapters.repository import Repository
from sqlalchemy import inspect, text


def _differences(connection, metadata, version_table):
    ours = {t.name for t in metadata.sorted_tables}

    def only_ours(name, type_, parent_names):
        # Another service's tables in the same schema are not ours to compare.
        return name in ours if type_ == "table" else True

    context = MigrationContext.configure(
        connection, opts={"version_table": version_table, "include_name": only_ours}
    )
    return compare_metadata(context, metadata)


async def test_migrations_match_the_tables_and_coexist_with_the_recalculator(database):
    db = make_engine(database.url, database.schema)
    try:
        await Repository(db, database.schema).create_schema()
        store = Store(db, database.schema)
        await store.create_schema()
        await store.create_schema()  # a second upgrade is a no-op
        async with db.connect() as conn:
            ours = await conn.run_sync(_differences, channel_tables.metadata, VERSION_TABLE)
            theirs = await conn.run_sync(_differences, recalculator_tables.metadata, "alembic_version")
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            revision = (await conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))).scalar()
        assert ours == [] and theirs == []
        assert {t.name for t in channel_tables.metadata.sorted_tables} <= names
        assert {"alembic_version", VERSION_TABLE} <= names
        assert revision == "c0005"
    finally:
        await db.dispose()
