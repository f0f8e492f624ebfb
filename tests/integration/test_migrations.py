"""The migrations build exactly the tables the code declares, on every backend, and a
second upgrade is a no-op."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from backorders_platform.database import make_engine
from recalculator.adapters import tables
from recalculator.adapters.migrate import alembic_config
from recalculator.adapters.repository import Repository
from sqlalchemy import inspect, text

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


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


async def test_a_database_made_before_migrations_is_adopted(database):
    db = make_engine(database.url, database.schema)
    try:
        async with db.begin() as conn:
            if database.schema:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{database.schema}"'))
            await conn.run_sync(tables.metadata.create_all)  # as the code once did
        await Repository(db, database.schema).create_schema()
        async with db.connect() as conn:
            assert await conn.run_sync(_differences) == []
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            revision = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        assert "alembic_version" in names and revision == HEAD
    finally:
        await db.dispose()


async def test_a_failed_migration_leaves_nothing_half_done(database, monkeypatch):
    from recalculator.adapters import migrate

    def broken(self, connection):
        connection.exec_driver_sql("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("migration failed")

    db = make_engine(database.url, database.schema)
    try:
        monkeypatch.setattr(migrate.MigrationSet, "_upgrade", broken)
        with __import__("pytest").raises(RuntimeError):
            await migrate.upgrade(db, database.schema)
        async with db.connect() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert "half_done" not in names
    finally:
        await db.dispose()
