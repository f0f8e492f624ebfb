"""Schema names reach SQL that cannot bind them (CREATE / DROP SCHEMA, the search path): a
name outside the strict pattern is refused before anything is sent, and an accepted name is
always quoted, so one in capitals that is also a keyword names exactly that schema."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from backorders_platform import schema_names
from backorders_platform.database import make_engine
from backorders_platform.migrations import drop_schema
from channel_sync.adapters.store import Store as ChannelStore
from integration.conftest import postgres_url
from notifier.adapters.store import Store as NotifierStore
from recalculator.adapters import migrate
from recalculator.adapters.repository import Repository
from recalculator.kafka import sharded
from recalculator.publishing import to_json
from recalculator.runtime.embedded import EmbeddedRuntime, Record
from sqlalchemy import text
from support import created, stock

HOSTILE = [
    'x"; DROP SCHEMA public CASCADE; --',
    'gone", "victim',
    "a;b",
    "with space",
    "new\nline",
    "trailing\n",
    "1starts_with_digit",
    "dash-ed",
    "ünïcode",
    "x" * 64,
    "colon:name",
]
LEGAL = ["backorders", "_x", "Order", "T1_shard12", "x" * 63]
BACKORDERS = [sys.executable, "-m", "backorders_app.main"]


@pytest.mark.parametrize("name", HOSTILE)
async def test_a_hostile_name_is_refused_before_any_sql(name):
    url = postgres_url()
    with pytest.raises(schema_names.InvalidSchemaName, match="is not allowed"):
        schema_names.quoted(name)
    with pytest.raises(schema_names.InvalidSchemaName):
        make_engine(url, name)
    with pytest.raises(schema_names.InvalidSchemaName):
        make_engine(url, "backorders", also=name)
    with pytest.raises(schema_names.InvalidSchemaName):
        await drop_schema(url, name)
    db = make_engine(url)
    try:
        with pytest.raises(schema_names.InvalidSchemaName):
            await migrate.upgrade(db, name)
    finally:
        await db.dispose()


@pytest.mark.parametrize("name", LEGAL)
def test_legal_names_are_quoted(name):
    assert schema_names.quoted(name) == f'"{name}"'


async def _schemas(url: str) -> set[str]:
    db = make_engine(url)
    try:
        async with db.connect() as conn:
            return set((await conn.execute(text("SELECT nspname FROM pg_namespace"))).scalars())
    finally:
        await db.dispose()


async def test_a_name_smuggling_another_schema_into_drop_schema_drops_nothing():
    url = postgres_url()
    victim = f"victim_{os.getpid()}"
    db = make_engine(url)
    try:
        async with db.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{victim}"'))
            await conn.execute(text(f'CREATE TABLE "{victim}".precious (x int)'))
        with pytest.raises(schema_names.InvalidSchemaName):
            await drop_schema(url, f'gone", "{victim}')
        assert victim in await _schemas(url)
    finally:
        await db.dispose()
        await drop_schema(url, victim)


def test_the_command_refuses_a_hostile_schema_in_one_line():
    url = postgres_url()
    victim = f"victim_cli_{os.getpid()}"

    async def make_victim():
        db = make_engine(url)
        try:
            async with db.begin() as conn:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{victim}"'))
        finally:
            await db.dispose()

    asyncio.run(make_victim())
    try:
        env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
        hostile = 'x"; DROP SCHEMA public CASCADE; --'
        for args in (
            ("status", "--db", url, "--schema", hostile),
            ("status", "--db", url, "--shards", "2", "--schema", hostile),
            ("rebuild", "--yes", "--db", url, "--shards", "1", "--schema", f'gone", "{victim}'),
            ("notifier", "failed", "--db", url, "--schema", hostile),
            ("channels", "failures", "--db", url, "--schema", hostile),
        ):
            result = subprocess.run([*BACKORDERS, *args], capture_output=True, text=True, env=env, timeout=60)
            assert result.returncode == 2, (args, result.stderr[-2000:])
            [line] = result.stderr.splitlines()
            assert line.startswith(f"backorders {args[0]}: schema name ") and "is not allowed" in line, line
        assert victim in asyncio.run(_schemas(url))
    finally:
        asyncio.run(drop_schema(url, victim))


async def test_a_legal_name_needing_quotes_names_exactly_that_schema():
    url = postgres_url()
    name = "Order"  # capitals, and a reserved word: only quoted does it name this schema
    base = "Order_Pipe"
    try:
        async with EmbeddedRuntime(url, schema=name) as runtime:
            # Enough rows for the COPY path of the upserts too.
            events = [stock("sku-1", 5)] + [created(f"o{n}", [("1", "sku-1", 1)]) for n in range(250)]
            await runtime.handle_batch([Record("log", n, to_json(e)) for n, e in enumerate(events, 1)])
            await runtime.handle_batch([Record("log", 252, to_json(stock("sku-1", 300, recalculate=True)))])
        async with EmbeddedRuntime(url, schema=name) as reloaded:
            assert len(reloaded.engine.orders) == 250
            assert reloaded.engine.stock["sku-1"] == {"W1": 300}
        db = make_engine(url, name)
        try:
            await NotifierStore(db, name).create_schema()
            await ChannelStore(db, name).create_schema()
        finally:
            await db.dispose()
        await sharded.setup_pipeline(url, base, 2)
        await sharded.migrate_stage(url, sharded.shard_schema(base, 1))
        stage = make_engine(url, sharded.shard_schema(base, 1), also=base)
        try:
            async with stage.connect() as conn:  # its own tables and the pipeline's, by the search path
                assert (await conn.execute(text("SELECT count(*) FROM outbox"))).scalar() == 0
                assert (await conn.execute(text("SELECT count(*) FROM routed"))).scalar() == 0
        finally:
            await stage.dispose()

        db = make_engine(url)
        try:
            async with db.connect() as conn:
                tables = set((await conn.execute(text(
                    "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                    "WHERE table_schema IN ('Order', 'Order_Pipe', 'Order_Pipe_shard1')"
                ))).scalars())
        finally:
            await db.dispose()
        assert {"Order.orders", "Order.outbox", "Order.notifier_orders", "Order.channel_sync_failures",
                "Order_Pipe.routed", "Order_Pipe_shard1.outbox"} <= tables
        assert not {"order", "order_pipe"} & await _schemas(url)
    finally:
        for schema in (name, *sharded.all_schemas(base, 2)):
            await drop_schema(url, schema)
    assert not {name, base} & await _schemas(url)


def test_a_sharded_base_whose_stage_names_would_be_too_long_is_refused():
    with pytest.raises(schema_names.InvalidSchemaName):
        sharded.ShardedWorker("postgresql+asyncpg://u:p@127.0.0.1/db", base="b" * 60, shards=2)
    with pytest.raises(schema_names.InvalidSchemaName):
        Repository(make_engine("postgresql+asyncpg://u:p@127.0.0.1/db", sharded.assembler_schema("b" * 60)))
