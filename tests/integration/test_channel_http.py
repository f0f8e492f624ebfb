"""Channel-sync against a real HTTP server on 127.0.0.1 standing in for Wayfair (OAuth token
endpoint + GraphQL), Overstock and Magento 2, with its state on SQLite and PostgreSQL:
payload shapes and auth headers, the container/PO switch, Magento tags on and off,
differential sending, 429 with Retry-After, 500 retried, 400 recorded failed, token refresh."""

from __future__ import annotations

import copy
import csv
import io
import json
import time
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from backorders_platform.database import make_engine
from channel_support import (
    CREDENTIALS,
    Answer,
    StandIn,
    cloud,
    container,
    http_config,
    position,
    product,
    purchase_order,
    records,
    settings,
)
from channel_sync import config as config_module
from channel_sync.adapters.store import Store
from channel_sync.service import ChannelSyncService

DAY = [
    product("CAT-HAMMOCK", "Cat Hammock, Grey"),
    product("DOG-BED", "Dog Bed, Navy"),
    purchase_order("PO-1", ("CAT-HAMMOCK", 2, 0, "2025-05-05"), ("DOG-BED", 6, 0, "2025-05-07")),
    purchase_order("PO-2", ("CAT-HAMMOCK", 12, 2, "2025-05-09")),
    container("MSCU7", "2025-05-20", {"CAT-HAMMOCK": 48}),
    position("CAT-HAMMOCK", 0, 3),
    position("DOG-BED", 4, 0),
    position("MUG", 9, 0),
]


@pytest.fixture
async def standin():
    server = await StandIn().start()
    yield server
    await server.stop()


@asynccontextmanager
async def channel_sync(database, standin: StandIn, data_dir: Path = Path("var"), **overrides):
    """The service with every channel (or those not overridden with None) on the stand-in;
    only a channel switched to the file sink writes, under `data_dir`."""
    config = config_module.parse(http_config(standin.base, **overrides), data_dir, CREDENTIALS)
    db = make_engine(database.url, database.schema)
    service = ChannelSyncService(Store(db, database.schema), config, env=CREDENTIALS)
    try:
        yield await service.start()
    finally:
        await service.close()
        await db.dispose()


async def test_wayfair_gets_the_inventory_mutation_in_batches_with_a_bearer_token(database, standin):
    async with channel_sync(database, standin, overstock=None, magento=None) as sync:
        await sync.consume("day", records(DAY))
        report = await sync.push("wayfair")
    assert (report.sent, report.accepted, report.batches) == (3, 3, 2)  # batch_size 2
    [token] = standin.seen("wayfair-token")
    assert token.json() == {"grant_type": "client_credentials", "client_id": "wf-client",
                            "client_secret": "wf-secret", "audience": "https://api.wayfair.io/"}
    calls = standin.seen("wayfair")
    assert [c.headers["Authorization"] for c in calls] == ["Bearer tok-1", "Bearer tok-1"]
    assert all(c.headers["Content-Type"].startswith("application/json") for c in calls)
    bodies = [c.json() for c in calls]
    assert all(b["query"].startswith("mutation inventory(") for b in bodies)
    assert all(b["variables"]["feedKind"] == "DIFFERENTIAL" for b in bodies)
    items = [item for b in bodies for item in b["variables"]["inventory"]]
    assert items[0] == {
        "supplierId": 4242, "supplierPartNumber": "CAT-HAMMOCK", "quantityOnHand": 0, "quantityBackorder": 3,
        "quantityOnOrder": 12, "itemNextAvailabilityDate": "05-09-2025 00:00:00", "discontinued": False,
        "productNameAndOptions": "Cat Hammock, Grey",
    }
    assert [i["supplierPartNumber"] for i in items] == ["CAT-HAMMOCK", "DOG-BED", "MUG"]
    assert [i["quantityOnOrder"] for i in items] == [12, 6, 0]
    print("\nWayfair request body:", json.dumps(bodies[0], indent=2))


async def test_overstock_gets_a_csv_feed_with_its_api_key(database, standin):
    async with channel_sync(database, standin, wayfair=None, magento=None) as sync:
        await sync.consume("day", records(DAY))
        report = await sync.push("overstock")
    assert (report.accepted, report.batches) == (3, 1)
    [call] = standin.seen("overstock")
    assert call.headers["Authorization"] == "Bearer os-key-123"
    assert call.headers["Content-Type"] == "text/csv"
    assert list(csv.reader(io.StringIO(call.body))) == [
        ["SKU", "Quantity", "QuantityOnOrder", "ETA"],
        ["CAT-HAMMOCK", "0", "12", "2025-05-09"],
        ["DOG-BED", "4", "6", "2025-05-07"],
        ["MUG", "9", "0", ""],
    ]
    print("\nOverstock feed:\n" + call.body)


async def test_the_container_switch_sends_the_container_quantity_and_arrival_date(database, standin):
    async with channel_sync(database, standin, wayfair=None, magento=None) as sync:
        await sync.consume("day", records(DAY))
        await sync.push("overstock")
        await sync.consume("day", records([settings(use_shipping_containers_for_po=True)], start=len(DAY) + 1))
        report = await sync.push("overstock")
    assert report.sent == 2  # MUG has nothing on order either way: unchanged, not sent
    rows = list(csv.reader(io.StringIO(standin.seen("overstock")[-1].body)))
    assert rows[1:] == [["CAT-HAMMOCK", "0", "48", "2025-05-20"], ["DOG-BED", "4", "0", ""]]


async def test_magento_stock_items_with_and_without_the_backorder_tags(database, standin):
    async with channel_sync(database, standin, wayfair=None, overstock=None) as sync:
        await sync.consume("day", records(DAY))
        await sync.push("magento")
        first = {c.path: c for c in standin.seen("magento")}
        await sync.consume("day", records([settings(send_magento_backorder_tags=False)], start=len(DAY) + 1))
        await sync.push("magento")
        second = standin.seen("magento")[len(first):]
    hammock = first["/magento/rest/V1/products/CAT-HAMMOCK/stockItems/1"]
    assert hammock.method == "PUT" and hammock.headers["Authorization"] == "Bearer mg-token-456"
    assert hammock.json() == {"stockItem": {"qty": 0, "is_in_stock": True, "backorders": 1,
                                            "use_config_backorders": False}}
    assert first["/magento/rest/V1/products/MUG/stockItems/1"].json() == {
        "stockItem": {"qty": 9, "is_in_stock": True, "backorders": 0, "use_config_backorders": False}}
    # Tags off: both left out; every row changed shape, so every SKU is sent again.
    assert sorted(c.path.split("/")[-3] for c in second) == ["CAT-HAMMOCK", "DOG-BED", "MUG"]
    assert {c.path.split("/")[-3]: c.json() for c in second}["CAT-HAMMOCK"] == {
        "stockItem": {"qty": 0, "is_in_stock": False}}
    print("\nMagento request body:", hammock.json())


async def test_only_changed_rows_are_sent_and_a_redelivery_sends_nothing(database, standin):
    async with channel_sync(database, standin) as sync:
        await sync.consume("day", records(DAY))
        first = await sync.push_all()
        assert {n: r.accepted for n, r in first.items()} == {"magento": 3, "overstock": 3, "wayfair": 3}
        count = len(standin.requests)
        # Nothing changed: nothing is sent.
        assert {n: r.sent for n, r in (await sync.push_all()).items()} == {"magento": 0, "overstock": 0, "wayfair": 0}
        # The same records delivered again, and the same values under new ids: nothing either.
        taken = await sync.consume("day", records(DAY))
        assert taken.skipped == len(DAY)
        await sync.consume("again", records([position("MUG", 9, 0), position("DOG-BED", 4, 0)]))
        assert {n: r.sent for n, r in (await sync.push_all()).items()} == {"magento": 0, "overstock": 0, "wayfair": 0}
        assert len(standin.requests) == count
        # MUG touched but only its name changed: only Wayfair's row carries a name.
        await sync.consume("rename", records([product("MUG", "Mug, Blue"),
                                              purchase_order("PO-3", ("MUG", 5, 5, "2025-05-02"))]))
        assert len(await sync.store.pending("overstock")) == 1
        renamed = await sync.push_all()
        assert {n: (r.pending, r.sent) for n, r in renamed.items()} == {
            "magento": (1, 0), "overstock": (1, 0), "wayfair": (1, 1)}
        assert standin.seen("wayfair")[-1].json()["variables"]["inventory"][0]["productNameAndOptions"] == "Mug, Blue"
        count = len(standin.requests)
        # One SKU moves: only its row goes out, on every channel.
        await sync.consume("later", records([position("MUG", 7, 0)]))
        reports = await sync.push_all()
    assert {n: r.sent for n, r in reports.items()} == {"magento": 1, "overstock": 1, "wayfair": 1}
    [wayfair] = standin.seen("wayfair")[-1:]
    assert [i["supplierPartNumber"] for i in wayfair.json()["variables"]["inventory"]] == ["MUG"]
    assert standin.seen("magento")[-1].path.endswith("/MUG/stockItems/1")


async def test_a_restart_sends_nothing_already_accepted(database, standin):
    async with channel_sync(database, standin) as sync:
        await sync.consume("day", records(DAY))
        await sync.push_all()
    count = len(standin.requests)
    async with channel_sync(database, standin) as sync:
        await sync.consume("day", records(DAY))  # the whole log again, as after a crash
        reports = await sync.push_all()
    assert sum(r.sent for r in reports.values()) == 0
    assert len(standin.requests) == count


async def test_429_with_retry_after_then_success(database, standin):
    standin.script("overstock", Answer(429, "slow down", {"Retry-After": "1"}))
    async with channel_sync(database, standin, wayfair=None, magento=None) as sync:
        await sync.consume("day", records(DAY))
        started = time.monotonic()
        report = await sync.push("overstock")
        failures = await sync.store.failures()
    first, second = standin.seen("overstock")
    assert second.at - first.at >= 0.95  # waited what Retry-After asked, not the 0.05 s backoff
    assert (report.accepted, report.rejected, report.gave_up) == (3, 0, 0)
    assert first.body == second.body and failures == []
    assert time.monotonic() - started < 10


async def test_500_is_retried(database, standin):
    standin.script("wayfair", Answer(500, "oops"), Answer(503, "busy"))
    async with channel_sync(database, standin, overstock=None, magento=None, wayfair={"batch_size": 10}) as sync:
        await sync.consume("day", records(DAY))
        report = await sync.push("wayfair")
    assert len(standin.seen("wayfair")) == 3
    assert (report.accepted, report.gave_up) == (3, 0)


async def test_a_channel_that_stays_down_is_given_up_on_and_the_rows_stay_pending(database, standin):
    standin.script("overstock", *[Answer(503, "maintenance")] * 4)  # max_attempts 4
    async with channel_sync(database, standin, wayfair=None, magento=None) as sync:
        await sync.consume("day", records(DAY))
        down = await sync.push("overstock")
        failures = await sync.store.failures("overstock")
        assert [(f.sku, f.kind, f.status, f.body, f.attempts) for f in failures] == [
            (sku, "gave_up", 503, "maintenance", 4) for sku in ("CAT-HAMMOCK", "DOG-BED", "MUG")]
        assert len(await sync.store.pending("overstock")) == 3
        back = await sync.push("overstock")  # the next push (the worker's timer) finds it back
        assert await sync.store.failures("overstock") == []  # resolved by the accepted rows
        assert len(await sync.store.failures("overstock", include_resolved=True)) == 3
    assert (down.gave_up, back.accepted) == (3, 3)


async def test_400_is_recorded_failed_with_the_body_and_not_resent_until_the_row_changes(database, standin):
    standin.refuse_sku("DOG-BED", 400, '{"message": "Product that you are trying to update does not exist."}')
    async with channel_sync(database, standin, wayfair=None, overstock=None) as sync:
        await sync.consume("day", records(DAY))
        report = await sync.push("magento")
        [failure] = await sync.store.failures("magento")
        assert (report.accepted, report.rejected) == (2, 1)
        assert (failure.sku, failure.kind, failure.status, failure.attempts) == ("DOG-BED", "rejected", 400, 1)
        assert "does not exist" in failure.body
        assert json.loads(failure.row)["stockItem"]["qty"] == 4
        calls = len(standin.seen("magento"))
        assert (await sync.push("magento")).sent == 0  # refused rows are not retried as they are
        await sync.consume("later", records([position("DOG-BED", 3, 0)]))
        assert (await sync.push("magento")).rejected == 1  # a changed row is tried
    assert len(standin.seen("magento")) == calls + 1
    assert len(standin.seen("magento", "DOG-BED")) == 2


async def test_the_token_is_fetched_again_when_it_expires(database, standin):
    standin.token_lifetime = 1.5  # refreshed 0.15 s before it expires
    async with channel_sync(database, standin, overstock=None, magento=None, wayfair={"batch_size": 10}) as sync:
        await sync.consume("day", records(DAY))
        await sync.push("wayfair")
        time.sleep(1.5)
        await sync.consume("later", records([position("MUG", 1, 0)]))
        report = await sync.push("wayfair")
    assert report.accepted == 1
    assert len(standin.seen("wayfair-token")) == 2
    assert [c.headers["Authorization"] for c in standin.seen("wayfair")] == ["Bearer tok-1", "Bearer tok-2"]


async def test_a_401_fetches_a_new_token_once_and_the_batch_goes_through(database, standin):
    async with channel_sync(database, standin, overstock=None, magento=None, wayfair={"batch_size": 10}) as sync:
        await sync.consume("day", records(DAY))
        await sync.push("wayfair")
        standin.revoke_tokens()  # still unexpired on our side
        await sync.consume("later", records([position("MUG", 1, 0)]))
        report = await sync.push("wayfair")
    assert report.accepted == 1
    statuses = [c.headers["Authorization"] for c in standin.seen("wayfair")]
    assert statuses == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]


async def test_a_graphql_error_refuses_the_batch(database, standin):
    error = json.dumps({"errors": [{"message": "Field 'quantityOnHand' is invalid"}]})
    standin.script("wayfair", Answer(200, error))
    async with channel_sync(database, standin, overstock=None, magento=None, wayfair={"batch_size": 10}) as sync:
        await sync.consume("day", records(DAY))
        report = await sync.push("wayfair")
        failures = await sync.store.failures("wayfair")
    assert (report.rejected, report.accepted) == (3, 0)
    assert {f.sku for f in failures} == {"CAT-HAMMOCK", "DOG-BED", "MUG"}
    assert all("quantityOnHand" in f.body for f in failures)


async def test_a_changed_sku_mapping_looks_at_every_sku_again(database, standin):
    async with channel_sync(database, standin, wayfair=None, magento=None) as sync:
        await sync.consume("day", records(DAY))
        await sync.push("overstock")
    async with channel_sync(database, standin, wayfair=None, magento=None,
                            overstock={"sku_map": {"MUG": "OS-MUG-1"}}) as sync:
        report = await sync.push("overstock")
    assert (report.pending, report.sent) == (3, 1)
    assert standin.seen("overstock")[-1].body.splitlines()[1] == "OS-MUG-1,9,0,"


async def test_a_new_destination_gets_every_row_but_a_preview_changes_nothing(database, standin, tmp_path):
    files = {"sink": "file"}
    async with channel_sync(database, standin, tmp_path, wayfair=None, magento=None, overstock=files) as sync:
        await sync.consume("day", records(DAY))
        assert (await sync.push("overstock")).accepted == 3  # written as files
    # Read-only: the preview says what the push will do, and changes nothing.
    config = config_module.parse(http_config(standin.base, wayfair=None, magento=None), Path("var"), CREDENTIALS)
    db = make_engine(database.url, database.schema)
    try:
        preview = await ChannelSyncService(Store(db, database.schema), config).start(with_sinks=False)
        report = await preview.preview("overstock")
        assert [sku for sku, _ in report.rows] == ["CAT-HAMMOCK", "DOG-BED", "MUG"]
        assert await preview.store.accepted("overstock") != {}
    finally:
        await db.dispose()
    async with channel_sync(database, standin, wayfair=None, magento=None) as sync:
        report = await sync.push("overstock")
    assert (report.pending, report.sent, report.accepted) == (3, 3, 3)
    assert len(standin.seen("overstock")[-1].body.splitlines()) == 4


async def test_the_projection_is_stored_as_it_is_kept(database, standin):
    """Everything the projection holds comes back after a restart: POs with their receipts,
    containers, names, positions, the two settings and the receipts already counted."""
    receipt = cloud_receipt("PO-1", "DOG-BED", 4, id="receipt-1")
    later = [settings(use_shipping_containers_for_po=True, send_magento_backorder_tags=False), receipt,
             purchase_order("PO-9", ("MUG", 3, 0, None))]
    async with channel_sync(database, standin) as sync:
        await sync.consume("day", records(DAY + later))
        before = sync.projection
    async with channel_sync(database, standin) as sync:
        after = sync.projection
        snapshot = {attribute: copy.deepcopy(getattr(after, attribute)) for attribute in ATTRIBUTES}
        # The same receipt from another source is not counted again.
        await sync.consume("again", records([receipt]))
        assert [line.qty_received for line in sync.projection.purchase_orders["PO-1"]
                if line.sku == "DOG-BED"] == [4]
    for attribute in ATTRIBUTES:
        assert snapshot[attribute] == getattr(before, attribute), attribute
    assert [line.qty_received for line in after.purchase_orders["PO-1"] if line.sku == "DOG-BED"] == [4]
    assert (after.use_containers, after.magento_tags) == (True, False)


ATTRIBUTES = ("purchase_orders", "containers", "names", "positions", "use_containers", "magento_tags",
              "receipts_seen", "po_times", "po_receipts")


def cloud_receipt(po_id: str, sku: str, qty: int, *, id: str) -> dict:
    # Later than the PO updates of DAY (a receipt counts only when later than the update held).
    return cloud("POReceived", {"po_id": po_id, "warehouse_id": "W1", "lines": [{"sku": sku, "qty": qty}]}, id=id,
                 time="2025-04-30T09:00:00Z")
