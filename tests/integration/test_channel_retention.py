"""Channel-sync's retention, on SQLite and PostgreSQL, against the stand-in HTTP server:
closed purchase orders and containers, old receipts, resolved and superseded failures, old
dead letters and old feed files go; open supply, recent closed supply, the latest failure of
a SKU and the rows the feeds send stay the same; an update of what was pruned arriving late
brings nothing back; and over two months of business days the tables stay the same size."""

from __future__ import annotations

import json
import os
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from backorders_platform.database import make_engine
from channel_support import CREDENTIALS, Answer, StandIn, cloud, container, http_config, position, purchase_order
from channel_sync import config as config_module
from channel_sync.adapters.store import Store
from channel_sync.domain import feeds
from channel_sync.domain.projection import Projection
from channel_sync.service import ChannelSyncService, Record

START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
GROWING = ("channel_sync_purchase_orders", "channel_sync_containers", "channel_sync_receipts",
           "channel_sync_failures", "channel_sync_dead_letters")


def at(days: float) -> str:
    return (START + timedelta(days=days)).isoformat().replace("+00:00", "Z")


def received(po_id: str, sku: str, qty: int, days: float) -> dict:
    return cloud("POReceived", {"po_id": po_id, "warehouse_id": "WH", "lines": [{"sku": sku, "qty": qty}]},
                 id=f"rcv-{po_id}-{days}", time=at(days))


@pytest.fixture
async def standin():
    server = await StandIn().start()
    yield server
    await server.stop()


class Clock:
    def __init__(self) -> None:
        self.now = START.timestamp()

    def __call__(self) -> float:
        return self.now

    def day(self, days: float) -> None:
        self.now = (START + timedelta(days=days)).timestamp()


@asynccontextmanager
async def service_for(database, standin: StandIn, data_dir: Path, clock: Clock, **retention):
    raw = http_config(standin.base, wayfair={"sink": "file"}, magento=None, overstock={"batch_size": 1})
    raw["retention"] = retention
    config = config_module.parse(raw, data_dir, CREDENTIALS)
    db = make_engine(database.url, database.schema)
    service = ChannelSyncService(Store(db, database.schema, clock=clock), config, env=CREDENTIALS)
    try:
        yield await service.start()
    finally:
        await service.close()
        await db.dispose()


class Feed:
    def __init__(self, service: ChannelSyncService) -> None:
        self.service = service
        self.position = 0

    async def __call__(self, *events: dict | str) -> None:
        batch = []
        for event in events:
            self.position += 1
            batch.append(Record("day", self.position, event if isinstance(event, str) else json.dumps(event)))
        await self.service.take_in_records(batch)


def _date_files(folder: Path, clock: Clock) -> None:
    """The files written since the last call get the test's wall clock as their time."""
    for path in folder.rglob("*.*"):
        if path.stat().st_mtime > clock.now + 3600:
            os.utime(path, (clock.now, clock.now))


async def test_old_rows_go_and_what_is_still_needed_stays(database, standin, tmp_path):
    clock = Clock()
    async with service_for(database, standin, tmp_path, clock, closed_supply_days=5, failure_days=3,
                           dead_letter_days=3, feed_file_days=3) as sync:
        feed = Feed(sync)
        await feed(purchase_order("PO-CLOSED", ("A", 5, 0, "2025-03-20"), time=at(0)),
                   received("PO-CLOSED", "A", 5, 0.5),
                   purchase_order("PO-FULL", ("A", 4, 4, "2025-03-20"), time=at(0)),
                   purchase_order("PO-OPEN", ("B", 5, 0, "2025-03-25"), time=at(0)),
                   received("PO-GHOST", "B", 1, 0.2),  # its PO never arrives
                   container("C-ARRIVED", "2025-03-10", {"A": 10}, time=at(0)),
                   container("C-ARRIVED", "2025-03-10", {}, time=at(0.5)),
                   container("C-ON-WAY", "2025-03-30", {"B": 3}, time=at(0)),
                   position("A", 1, 0, time=at(0)), position("B", 0, 2, time=at(0)),
                   "not json")
        # Overstock refuses both rows; A changes and is accepted (its failure resolved); B
        # changes and is refused again (its first failure superseded, the second the latest).
        standin.script("overstock", Answer(400, "bad rows"), Answer(400, "bad rows"))
        assert (await sync.push("overstock")).rejected == 2
        clock.day(1)
        await feed(position("A", 2, 0, time=at(1)), position("B", 1, 3, time=at(1)))
        standin.script("overstock", Answer(200, "{}"), Answer(400, "still bad"))
        report = await sync.push("overstock")
        assert (report.accepted, report.rejected) == (1, 1)
        await sync.push("wayfair")
        _date_files(tmp_path / "feeds", clock)
        clock.day(8)
        await feed(purchase_order("PO-RECENT", ("A", 2, 0, "2025-03-20"), time=at(8)),
                   received("PO-RECENT", "A", 2, 8), "not json either", position("A", 3, 0, time=at(8)))
        await sync.push("wayfair")
        _date_files(tmp_path / "feeds", clock)
        rows_before = feeds.rows(sync.projection, sync.config.channels["wayfair"].options(), ["A", "B"])

        clock.day(10)
        await feed(position("B", 1, 3, time=at(10)))  # business time: day 10
        report = await sync.prune()
        assert (report.purchase_orders, report.containers, report.receipts) == (2, 1, 2)
        assert (report.failures, report.dead_letters, report.files) == (2, 1, 1)

        projection = Projection()
        await sync.store.load(projection)
        for held in (sync.projection, projection):
            assert set(held.purchase_orders) == {"PO-OPEN", "PO-RECENT"}
            assert set(held.containers) == {"C-ON-WAY"}
            assert held.receipts_seen == {"rcv-PO-RECENT-8"}
            assert feeds.rows(held, sync.config.channels["wayfair"].options(), ["A", "B"]) == rows_before
        [failure] = await sync.store.failures(include_resolved=True)
        assert (failure.sku, failure.body) == ("B", "still bad")  # the latest refusal of B stays
        assert [row.raw for row in await sync.store.dead_letters()] == ["not json either"]
        assert len(list((tmp_path / "feeds" / "wayfair").glob("*.json"))) == 1

        # What was pruned arriving late (a redelivery from before the horizon) brings
        # nothing back; new supply is taken in.
        await feed(purchase_order("PO-CLOSED", ("A", 5, 0, "2025-03-20"), time=at(0)),
                   received("PO-CLOSED", "A", 5, 0.5), container("C-ARRIVED", "2025-03-10", {"A": 10}, time=at(0)),
                   purchase_order("PO-NEW", ("A", 1, 0, "2025-04-01"), time=at(10)))
        assert set(sync.projection.purchase_orders) == {"PO-OPEN", "PO-RECENT", "PO-NEW"}
        assert set(sync.projection.containers) == {"C-ON-WAY"}


async def test_table_sizes_stay_flat_over_two_months_of_business_days(database, standin, tmp_path):
    """Each business day three purchase orders are placed and received in full, two
    containers leave and arrive, ten SKUs' positions move, a bad record is dead-lettered, and
    the channels are pushed (Overstock refusing every third day); the service's wall clock
    follows the business day and pruning runs once a day."""
    days, skus = 62, [f"SKU-{n}" for n in range(10)]
    clock = Clock()
    async with service_for(database, standin, tmp_path, clock, closed_supply_days=20, failure_days=10,
                           dead_letter_days=10, feed_file_days=10) as sync:
        feed = Feed(sync)
        sizes = {}
        for day in range(days):
            clock.day(day + 0.5)
            events: list[dict | str] = []
            for n in range(3):
                po = f"PO-{day}-{n}"
                events += [purchase_order(po, (skus[n], 5, 0, "2025-06-01"), time=at(day)),
                           received(po, skus[n], 5, day + 0.2)]
            for n in range(2):
                box = f"C-{day}-{n}"
                events += [container(box, "2025-06-01", {skus[n + 3]: 4}, time=at(day)),
                           container(box, "2025-06-01", {}, time=at(day + 0.3))]
            events += [position(sku, day + n, n % 3, time=at(day + 0.4)) for n, sku in enumerate(skus)]
            events.append("not json")
            await feed(*events)
            if day % 3 == 0:
                standin.script("overstock", Answer(400, "refused today"))
            await sync.push_all()
            _date_files(tmp_path / "feeds", clock)
            await sync.prune()
            counts = await sync.store.counts_by_table()
            sizes[day] = {name: counts[name] for name in GROWING}
            sizes[day]["files"] = len(list((tmp_path / "feeds").rglob("*.json")))
    # Flat once the windows are full: no table is larger in the last 20 days than in the
    # 12 days before them, and the supply and the dead letters are the same every day.
    for name in sizes[0]:
        recent = max(sizes[d][name] for d in range(days - 20, days))
        before = max(sizes[d][name] for d in range(days - 32, days - 20))
        assert recent == before, (name, {d: sizes[d][name] for d in range(days - 32, days)})
    steady = ("channel_sync_purchase_orders", "channel_sync_containers", "channel_sync_receipts",
              "channel_sync_dead_letters")
    assert all({n: sizes[d][n] for n in steady} == {n: sizes[days - 1][n] for n in steady}
               for d in range(days - 32, days))
    last = sizes[days - 1]
    assert last["channel_sync_purchase_orders"] == 3 * 20 and last["channel_sync_containers"] == 2 * 20
    assert last["channel_sync_receipts"] == 3 * 20 and last["channel_sync_dead_letters"] == 11
    assert last["channel_sync_failures"] <= 4 and last["files"] <= 5 * 11
