"""A stage of the sharded recalculator claims its state before reading it: a deposed owner
(one that still believes it holds the stage, its lock lost unnoticed) that commits a batch
while a new owner takes the stage over is either fenced out or read by the new owner, never
left out of the state the new owner works from. The read is one REPEATABLE READ snapshot."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from backorders_platform.database import FencedOut, make_engine, upsert
from backorders_platform.kafka_settings import KafkaSettings
from integration.conftest import _drop_schema, kafka_bootstrap, postgres_url
from integration.test_kafka_worker import create_topics
from integration.test_sharded_worker import output_topics
from recalculator.adapters import pipeline_tables as pt
from recalculator.adapters.repository import BatchRows, Repository
from recalculator.kafka import sharded
from sqlalchemy import text


async def _deposed_owner(url: str, base: str, schema: str) -> tuple[Repository, str]:
    """A repository of the stage's schema whose owner claimed it earlier (its fence)."""
    await sharded.setup_pipeline(url, base, 2)
    await sharded.migrate_stage(url, schema)
    repository = Repository(make_engine(url, schema, also=base), schema)
    return repository, await repository.claim()


def _write_when_claimed(monkeypatch, schema: str, deposed: Repository, fence: str, rows: BatchRows) -> dict:
    """The deposed owner commits `rows` at the moment the new owner of `schema` claims the
    stage: just before its claim goes in. Read first and claimed after, the new owner has
    read its state by then."""
    outcome: dict = {}
    claim = Repository.claim

    async def claim_with_a_batch_in_between(self) -> str:
        if self.schema == schema and not outcome:
            try:
                await deposed.save_rows(rows, fence=fence)
                outcome["written"] = True
            except FencedOut:
                outcome["written"] = False
        return await claim(self)

    monkeypatch.setattr(Repository, "claim", claim_with_a_batch_in_between)
    return outcome


@pytest.fixture
def base():
    url = postgres_url()
    name = f"claim_{uuid.uuid4().hex[:10]}"
    yield name
    for schema in sharded.all_schemas(name, 2):
        asyncio.run(_drop_schema(url, schema))


async def test_a_shard_reads_its_state_after_claiming_it(monkeypatch, base):
    url = postgres_url()
    schema = sharded.shard_schema(base, 0)
    deposed, fence = await _deposed_owner(url, base, schema)
    late = BatchRows(stock=[{"sku": "late-sku", "warehouse_id": "W1", "qty": 7}])
    outcome = _write_when_claimed(monkeypatch, schema, deposed, fence, late)
    stage = sharded.ShardStage(url, base, 0, kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap()),
                               topics=output_topics())
    try:
        assert await stage.try_start()
        assert "written" in outcome
        assert outcome["written"] is False or stage.engine.stock.get("late-sku") == {"W1": 7}, \
            "the shard works from a state that misses a batch committed before its claim"
        # And from now on the deposed owner writes nothing.
        with pytest.raises(FencedOut):
            await deposed.save_rows(BatchRows(stock=[{"sku": "later", "warehouse_id": "W1", "qty": 1}]), fence=fence)
    finally:
        await stage.stop()
        await deposed.db.dispose()


async def test_the_assembler_reads_its_state_after_claiming_it(monkeypatch, base):
    url = postgres_url()
    schema = sharded.assembler_schema(base)
    deposed, fence = await _deposed_owner(url, base, schema)
    row = {"order_id": "late-order", "company_id": "c1", "status": "None",
           "doc": '{"published": {"1": 0}, "by_shard": {"0": [["1", 1, 0, false]]}}'}

    async def assembled(conn) -> None:
        await upsert(conn, pt.assembled_orders, [row], ["order_id"])

    outcome = _write_when_claimed(monkeypatch, schema, deposed, fence, BatchRows(extra=[assembled]))
    stage = sharded.AssemblerStage(url, base, kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap()),
                                   topics=output_topics())
    try:
        await stage.start()
        assert "written" in outcome
        assert outcome["written"] is False or "late-order" in stage.assembler.orders, \
            "the assembler works from a state that misses a batch committed before its claim"
    finally:
        await stage.stop()
        await deposed.db.dispose()


async def test_the_router_reads_its_state_after_claiming_it(monkeypatch, base):
    url, servers = postgres_url(), kafka_bootstrap()
    schema = sharded.router_schema(base)
    deposed, fence = await _deposed_owner(url, base, schema)
    late = BatchRows(warehouses=[{"warehouse_id": "W-late", "type": "Regular", "name": None}])
    outcome = _write_when_claimed(monkeypatch, schema, deposed, fence, late)
    topics = await create_topics(servers)
    router = sharded.RouterWorker(url, base, 2, kafka=KafkaSettings(bootstrap_servers=servers), topics=topics)
    try:
        await router.start()
        assert "written" in outcome
        assert outcome["written"] is False or "W-late" in router.runtime.engine.warehouse_types, \
            "the router works from a state that misses a batch committed before its claim"
    finally:
        await router.stop()
        await deposed.db.dispose()


async def test_the_claimed_state_is_read_in_one_repeatable_read_snapshot(base):
    url = postgres_url()
    schema = sharded.shard_schema(base, 1)
    await sharded.setup_pipeline(url, base, 2)
    await sharded.migrate_stage(url, schema)
    repository = Repository(make_engine(url, schema, also=base), schema)
    try:
        async with sharded.claimed_snapshot(repository) as (fence, conn):
            isolation = (await conn.execute(text("SELECT current_setting('transaction_isolation')"))).scalar()
            owner = (await conn.execute(text("SELECT value FROM meta WHERE key = 'owner'"))).scalar()
        assert isolation == "repeatable read"
        assert owner == fence  # claimed, and committed, before the snapshot
    finally:
        await repository.db.dispose()
