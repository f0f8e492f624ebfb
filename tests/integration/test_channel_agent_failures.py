"""Channel-sync's faust agent (`ChannelSyncKafkaWorker.take_in`) when its intake fails, on
SQLite and PostgreSQL, fed by a stand-in for faust's stream: no exception loses a record or
stops the worker. A batch that fails for an unforeseen reason is tried again; a record that
keeps failing is dead-lettered alone, with the traceback, and the others are taken in; an
outage is waited out however long it lasts; unreadable records are dead-lettered at once."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from backorders_platform.database import make_engine
from channel_support import kafka_worker, position, product, purchase_order
from channel_sync.adapters.store import Store
from channel_sync.config import default_config
from channel_sync.domain.projection import Projection
from channel_sync.service import ChannelSyncService
from consumer_support import Stream, database_away, failing_apply

POSITIONS, REFERENCE = "cs.positions", "cs.reference"


@asynccontextmanager
async def worker_service(database, tmp_path: Path):
    db = make_engine(database.url, database.schema)
    service = ChannelSyncService(Store(db, database.schema), default_config(tmp_path), retry_pause=0.01)
    try:
        yield await service.start()
    finally:
        await service.close()
        await db.dispose()


@pytest.fixture
def worker(tmp_path):
    return kafka_worker(tmp_path)


@pytest.fixture
async def agent_service(database, tmp_path, worker):
    async with worker_service(database, tmp_path) as service:
        worker.running.service = service
        yield service


def _workload() -> list[tuple[str, int, str]]:
    return [
        (REFERENCE, 0, json.dumps(product("CAT-HAMMOCK", "Cat Hammock"))),
        (REFERENCE, 0, json.dumps(purchase_order("PO-BUG", ("BUG", 5, 0, "2025-05-05")))),
        (REFERENCE, 0, json.dumps(purchase_order("PO-1", ("CAT-HAMMOCK", 5, 0, "2025-05-05")))),
        (POSITIONS, 0, json.dumps(position("CAT-HAMMOCK", 0, 2))),
        (POSITIONS, 0, json.dumps(position("BUG", 1, 0))),
    ]


async def test_a_record_that_keeps_failing_is_dead_lettered_alone_and_the_others_go_on(agent_service, worker, monkeypatch):
    tries = failing_apply(monkeypatch, Projection,
                          lambda event, _: event.type == "PurchaseOrderUpdated" and event.data.po_id == "PO-BUG",
                          RuntimeError("an input nothing foresaw"))
    await worker.take_in.fun(Stream(_workload()))

    service = agent_service
    assert set(service.projection.purchase_orders) == {"PO-1"}
    assert set(service.projection.positions) == {"CAT-HAMMOCK", "BUG"}
    [dead] = await service.store.dead_letters()
    assert (dead.source, dead.position) == (f"{REFERENCE}:0", 1)
    assert dead.reason.startswith("failed 3 times: RuntimeError: an input nothing foresaw\nTraceback")
    assert '"po_id": "PO-BUG"' in dead.raw
    assert await service.store.positions() == {f"{REFERENCE}:0": 2, f"{POSITIONS}:0": 1}
    assert len(tries) == 3 + 3
    # What was committed is what the service holds.
    stored = Projection()
    await service.store.load(stored)
    assert set(stored.purchase_orders) == {"PO-1"} and set(stored.positions) == {"CAT-HAMMOCK", "BUG"}


async def test_a_failure_that_goes_away_is_tried_again_and_nothing_is_dead_lettered(agent_service, worker, monkeypatch):
    failing_apply(monkeypatch, Projection, lambda _, failed: len(failed) < 2, KeyError("a passing fault"))
    await worker.take_in.fun(Stream(_workload()))
    service = agent_service
    assert set(service.projection.purchase_orders) == {"PO-1", "PO-BUG"}
    assert await service.store.dead_letters() == []
    assert await service.store.positions() == {f"{REFERENCE}:0": 2, f"{POSITIONS}:0": 1}


async def test_an_outage_is_waited_out_without_counting_as_a_failure(agent_service, worker, monkeypatch):
    store = agent_service.store
    # far more than the 3 attempts a failure gets
    down = database_away(monkeypatch, store, "commit_consumed", 8, ConnectionResetError("the database went away"))
    await worker.take_in.fun(Stream(_workload()))
    assert down["failures"] == 8
    assert set(agent_service.projection.purchase_orders) == {"PO-1", "PO-BUG"}
    assert await store.dead_letters() == []


async def test_unreadable_records_are_dead_lettered_and_the_partition_goes_on(agent_service, worker):
    poison = [
        (POSITIONS, 0, '{"type": "SkuPositionChanged", "id": "p-1"'),
        (POSITIONS, 0, json.dumps({**position("CAT-HAMMOCK", 1, 0), "time": "0001-01-01T00:00:00+01:00"})),
        (POSITIONS, 0, json.dumps(position("CAT-HAMMOCK", 2**70, 0))),
        (POSITIONS, 0, json.dumps(position("CAT\x00HAMMOCK", 1, 0))),
        (POSITIONS, 0, json.dumps(position("S" * 1_000_000, 1, 0))),
        (POSITIONS, 0, json.dumps(position("CAT-HAMMOCK", 7, 1))),
    ]
    await worker.take_in.fun(Stream(poison))
    service = agent_service
    reasons = [row.reason for row in await service.store.dead_letters()]
    assert [r.split(":")[0] for r in reasons] == [
        "not JSON", "invalid event", "number out of range at data.available_qty (1.1805916207174113e+21)",
        "NUL character at data.sku", "identifier too long (1,000,000 characters; at most 500) at data.sku"]
    assert service.projection.positions["CAT-HAMMOCK"].available == 7
    assert await service.store.positions() == {f"{POSITIONS}:0": 5}
