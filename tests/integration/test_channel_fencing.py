"""Channel-sync's writes are fenced, on SQLite and PostgreSQL: a process that writes claims
the state before loading it, and once another process has claimed it (a standby that took
over while this worker lost its advisory lock unnoticed, PostgreSQL having restarted under
it) this one's batches write nothing, its pushes send and record nothing, and its agent
stops the worker instead of going on."""

from __future__ import annotations

import json

import pytest
from backorders_platform.database import FencedOut
from channel_support import kafka_worker, position, purchase_order, records
from channel_sync.adapters import tables as t
from channel_sync.domain.projection import Projection
from channel_sync.service import Record
from consumer_support import Stream
from integration.test_channel_agent_failures import POSITIONS, worker_service
from sqlalchemy import func, select

FIRST = [purchase_order("PO-1", ("CAT-HAMMOCK", 5, 0, "2025-05-05")), position("CAT-HAMMOCK", 0, 2)]
LATER = [purchase_order("PO-2", ("DOG-BED", 3, 0, "2025-05-06")), position("DOG-BED", 1, 0),
         position("CAT-HAMMOCK", 4, 0)]


async def _snapshot(service) -> dict:
    projection = Projection()
    await service.store.load(projection)
    async with service.store.db.connect() as conn:
        counts = {table.name: (await conn.execute(select(func.count()).select_from(table))).scalar_one()
                  for table in (t.pending, t.accepted, t.failures, t.dead_letters)}
    return {"positions": await service.store.positions(), "pos": sorted(projection.purchase_orders),
            "skus": {sku: (p.available, p.backorder) for sku, p in projection.positions.items()}, **counts}


async def test_a_deposed_process_writes_nothing_and_sends_nothing(database, tmp_path, monkeypatch):
    async with worker_service(database, tmp_path / "first") as first:
        await first.consume("day", records(FIRST))
        assert (await first.push("overstock")).accepted == 1
        async with worker_service(database, tmp_path / "second") as second:
            # The second process claimed the state: the first one is deposed.
            before = await _snapshot(first)
            files = sorted((tmp_path / "first").rglob("*.*"))

            with pytest.raises(FencedOut):
                await first.consume("day", records(LATER, start=3))
            with pytest.raises(FencedOut):  # not retried, not dead-lettered: it must stop
                await first.take_in_records([Record("day", n, raw) for n, raw in records(LATER, start=3)])
            for full in (False, True):  # every SKU looked at again: rows to send, were it allowed to
                with pytest.raises(FencedOut):
                    await first.push("overstock", full=full)

            # And through the worker's agent: it stops the worker instead of going on.
            crashed = []

            async def crash(error):
                crashed.append(error)

            worker = kafka_worker(tmp_path / "worker")
            worker.running.service = first
            monkeypatch.setattr(worker.app, "crash", crash)
            with pytest.raises(FencedOut):
                await worker.take_in.fun(Stream([(POSITIONS, 0, json.dumps(position("MUG", 9, 0)))]))
            assert len(crashed) == 1

            assert await _snapshot(first) == before
            assert sorted((tmp_path / "first").rglob("*.*")) == files

            # The process that holds the state goes on.
            await second.consume("day", records(LATER, start=3))
            assert (await second.push("overstock")).accepted == 2
            after = await _snapshot(second)
    assert after["pos"] == ["PO-1", "PO-2"] and after["skus"]["CAT-HAMMOCK"] == (4, 0)
