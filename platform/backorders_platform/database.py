"""The database under every service: SQLAlchemy's async engine on SQLite (aiosqlite, the
embedded default) or PostgreSQL (asyncpg), and the dialect's insert, upsert and append."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from . import schema_names


def sqlite_url(path: str | Path) -> str:
    return f"sqlite+aiosqlite:///{Path(path)}"


def make_engine(url: str, schema: str | None = None, *, also: str | None = None,
                pool_size: int | None = None) -> AsyncEngine:
    """An async engine for a SQLAlchemy URL; on PostgreSQL, `schema` is the search path,
    followed by `also` (the sharded pipeline's tables, written in the same transactions),
    and `pool_size` the connections kept open (as many again may be opened for a while)."""
    connect_args = {}
    for name in (schema, also):
        if name:
            schema_names.checked(name)  # before any connection: refused, never sent
    if schema and url.startswith("postgresql"):
        path = ", ".join(schema_names.quoted(name) for name in (schema, also) if name)
        connect_args = {"server_settings": {"search_path": path}}
    # pre_ping: after a database restart, pooled connections are found dead and replaced.
    pool = {"pool_size": pool_size, "max_overflow": pool_size} if pool_size and url.startswith("postgresql") else {}
    db = create_async_engine(url, connect_args=connect_args, pool_pre_ping=True, **pool)
    if db.dialect.name == "sqlite":

        @event.listens_for(db.sync_engine, "connect")
        def _sqlite_connect(dbapi_connection, _record):  # pragma: no cover - trivial
            # The driver's own transaction handling would commit DDL on its own (a failed
            # migration half applied); SQLAlchemy begins every transaction itself instead.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            # WAL with synchronous=NORMAL survives a killed process (not a power cut).
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(db.sync_engine, "begin")
        def _sqlite_begin(connection):  # pragma: no cover - trivial
            connection.exec_driver_sql("BEGIN")

    return db


def dialect_insert(dialect: str, table):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


# Above this many rows, PostgreSQL upserts go through COPY into a staging table.
_COPY_UPSERT_ROWS = 200


async def upsert(conn: AsyncConnection, table, rows: Sequence[dict], keys: Sequence[str]):
    if not rows:
        return
    if conn.dialect.name == "postgresql" and len(rows) >= _COPY_UPSERT_ROWS:
        await _copy_upsert(conn, table, rows, keys)
        return
    stmt = dialect_insert(conn.dialect.name, table)
    updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    if updates:
        stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=updates)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    await conn.execute(stmt, list(rows))


async def _copy_upsert(conn: AsyncConnection, table, rows: Sequence[dict], keys: Sequence[str]) -> None:
    """A large upsert on PostgreSQL: COPY into a temporary table emptied at commit, then one
    INSERT … SELECT … ON CONFLICT. Binding thousands of parameters costs the worker more CPU
    than the server spends on the rows."""
    raw = await _raw_in_transaction(conn)
    quote = conn.dialect.identifier_preparer.quote
    stage_name = f"stage_{table.name}"
    stage, target = quote(stage_name), quote(table.name)
    await raw.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {target} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    columns = list(rows[0])
    await raw.copy_records_to_table(
        stage_name, columns=columns, records=[tuple(row[c] for c in columns) for row in rows]
    )
    names = ", ".join(quote(c) for c in columns)
    updates = ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in columns if c not in keys)
    action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    await raw.execute(
        f"INSERT INTO {target} ({names}) SELECT {names} FROM {stage} "
        f"ON CONFLICT ({', '.join(quote(k) for k in keys)}) {action}"
    )


async def _raw_in_transaction(conn: AsyncConnection):
    """The asyncpg connection under `conn`, inside the batch's transaction (which starts
    with its first statement through SQLAlchemy)."""
    raw = (await conn.get_raw_connection()).driver_connection
    if not raw.is_in_transaction():
        await conn.execute(select(1))
    return raw


async def append_rows(conn: AsyncConnection, table, rows: Sequence[dict]) -> None:
    """Insert rows; on PostgreSQL through COPY, several times faster than INSERT for the
    thousands of outbox rows and processed ids of a batch, in the same transaction."""
    if conn.dialect.name != "postgresql":
        await conn.execute(table.insert(), list(rows))
        return
    raw = await _raw_in_transaction(conn)
    columns = list(rows[0])
    await raw.copy_records_to_table(
        table.name, columns=columns, records=[tuple(row[c] for c in columns) for row in rows]
    )


def chunks(items: Sequence, size: int = 1000):
    for start in range(0, len(items), size):
        yield items[start:start + size]


class FencedOut(Exception):
    """A batch was refused because another process owns the state now."""
