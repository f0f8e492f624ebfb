"""Channel-sync's delivery under faults, against the stand-in HTTP server on 127.0.0.1:
`Retry-After` whatever the case of its name, refused rows not sent again unchanged, our
credentials refused (401/403) leaving the rows pending, the token endpoint failing, a push
waiting for a channel not holding up what is taken in, and Wayfair's payload with the
container switch."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import time
from pathlib import Path

import pytest
from backorders_platform import logs
from backorders_platform.database import make_engine
from channel_support import (
    CREDENTIALS,
    Answer,
    StandIn,
    http_config,
    position,
    purchase_order,
    records,
    settings,
)
from channel_sync import config as config_module
from channel_sync.adapters.store import Store
from channel_sync.service import ChannelSyncService
from integration.test_channel_http import DAY, channel_sync


@pytest.fixture
async def standin():
    server = await StandIn().start()
    yield server
    await server.stop()


async def test_retry_after_is_honoured_whatever_the_case_of_its_name(database, standin):
    standin.script("overstock", Answer(429, "slow down", {"retry-after": "1"}))
    async with channel_sync(database, standin, wayfair=None, magento=None) as sync:
        await sync.consume("day", records(DAY))
        report = await sync.push("overstock")
    first, second = standin.seen("overstock")
    assert second.at - first.at >= 0.95  # what the server asked, not the 0.05 s backoff
    assert report.accepted == 3


async def test_a_refused_row_is_not_sent_again_while_it_is_unchanged(database, standin):
    standin.refuse_sku("DOG-BED", 400, '{"message": "Product that you are trying to update does not exist."}')
    async with channel_sync(database, standin, wayfair=None, overstock=None) as sync:
        await sync.consume("day", records(DAY))
        assert (await sync.push("magento")).rejected == 1
        calls = len(standin.seen("magento", "DOG-BED"))
        # DOG-BED is touched (its PO's date moves) but its Magento row stays the same.
        moved = purchase_order("PO-1", ("CAT-HAMMOCK", 2, 0, "2025-05-05"), ("DOG-BED", 6, 0, "2025-05-08"),
                               time="2025-04-30T09:00:00Z")
        await sync.consume("later", records([moved]))
        assert "DOG-BED" in await sync.store.pending("magento")
        report = await sync.push("magento")
        assert (report.sent, report.unchanged) == (0, 2)
        assert len(standin.seen("magento", "DOG-BED")) == calls
        assert await sync.store.pending("magento") == {}
        # A full push sends it again (the store may have been fixed on its side).
        assert (await sync.push("magento", full=True)).rejected == 1
    assert len(standin.seen("magento", "DOG-BED")) == calls + 1


async def test_refused_credentials_leave_the_rows_pending(database, standin):
    standin.script("overstock", Answer(403, '{"message": "forbidden"}'))
    # Wayfair: a 401, the one token refresh, and a 401 again.
    standin.script("wayfair", Answer(401, '{"errors": [{"message": "Unauthorized"}]}'),
                   Answer(401, '{"errors": [{"message": "Unauthorized"}]}'))
    async with channel_sync(database, standin, magento=None, wayfair={"batch_size": 10}) as sync:
        await sync.consume("day", records(DAY))
        overstock = await sync.push("overstock")
        wayfair = await sync.push("wayfair")
        assert (overstock.gave_up, overstock.rejected, wayfair.gave_up, wayfair.rejected) == (3, 0, 3, 0)
        assert len(standin.seen("overstock")) == 1  # not retried at once
        assert len(standin.seen("wayfair-token")) == 2 and len(standin.seen("wayfair")) == 2
        assert {f.kind for f in await sync.store.failures()} == {"gave_up"}
        assert len(await sync.store.pending("overstock")) == len(await sync.store.pending("wayfair")) == 3
        # The credentials fixed: the next push delivers every row.
        assert (await sync.push("overstock")).accepted == 3
        assert (await sync.push("wayfair")).accepted == 3
        assert await sync.store.failures() == []


async def test_the_token_endpoint_failing(database, standin):
    standin.script("wayfair-token", Answer(503, "busy"))
    async with channel_sync(database, standin, overstock=None, magento=None, wayfair={"batch_size": 10}) as sync:
        await sync.consume("day", records(DAY))
        assert (await sync.push("wayfair")).accepted == 3  # 503 retried
    assert len(standin.seen("wayfair-token")) == 2
    # Credentials the token endpoint refuses: nothing is sent, the rows stay pending.
    config = config_module.parse(http_config(standin.base, overstock=None, magento=None), Path("var"), CREDENTIALS)
    wrong = {**CREDENTIALS, "WAYFAIR_CLIENT_SECRET": "not-it"}
    db = make_engine(database.url, database.schema)
    sync = await ChannelSyncService(Store(db, database.schema), config, env=wrong).start()
    try:
        await sync.consume("later", records([position("MUG", 1, 0)]))
        calls = len(standin.seen("wayfair"))
        report = await sync.push("wayfair")
        [failure] = await sync.store.failures("wayfair")
        assert (report.gave_up, failure.kind, failure.status) == (1, "gave_up", 401)
        assert failure.body.startswith("token endpoint:")
        assert len(standin.seen("wayfair")) == calls
        assert list(await sync.store.pending("wayfair")) == ["MUG"]
    finally:
        await sync.close()
        await db.dispose()


async def test_records_are_taken_in_while_a_push_waits_for_a_channel(database, standin):
    standin.script("overstock", Answer(429, "slow down", {"Retry-After": "2"}))
    async with channel_sync(database, standin, wayfair=None, magento=None) as sync:
        await sync.consume("day", records(DAY))
        push = asyncio.create_task(sync.push("overstock"))
        await asyncio.sleep(0.3)  # the push is waiting what Retry-After asked
        started = time.monotonic()
        taken = await asyncio.wait_for(sync.consume("later", records([position("MUG", 2, 0)])), 1.5)
        assert taken.applied == 1 and time.monotonic() - started < 1.0
        assert not push.done()
        report = await push
        assert report.accepted == 3
        # MUG changed during the send: still pending, sent by the next push.
        assert list(await sync.store.pending("overstock")) == ["MUG"]
        assert (await sync.push("overstock")).accepted == 1
    assert standin.seen("overstock")[-1].body.splitlines()[1] == "MUG,2,0,"


async def test_wayfair_gets_the_container_quantity_and_arrival_date_with_the_switch(database, standin):
    async with channel_sync(database, standin, overstock=None, magento=None, wayfair={"batch_size": 10}) as sync:
        await sync.consume("day", records(DAY + [settings(use_shipping_containers_for_po=True)]))
        await sync.push("wayfair")
    [call] = standin.seen("wayfair")
    items = {item["supplierPartNumber"]: item for item in call.json()["variables"]["inventory"]}
    hammock = items["CAT-HAMMOCK"]
    assert (hammock["quantityOnOrder"], hammock["itemNextAvailabilityDate"]) == (48, "05-20-2025 00:00:00")
    assert (items["DOG-BED"]["quantityOnOrder"], items["DOG-BED"]["itemNextAvailabilityDate"]) == (0, None)
    print("\nWayfair item with the container switch:", json.dumps(hammock, sort_keys=True))


async def test_credentials_echoed_by_a_channel_are_in_no_stored_failure_and_no_log(database, standin, monkeypatch):
    """A token endpoint that echoes the client secret it was sent, a GraphQL API that quotes
    the bearer token of the request it refuses, an Overstock API that repeats the key."""
    secret, key = StandIn.CLIENT_SECRET, StandIn.OVERSTOCK_KEY
    standin.script("wayfair-token", Answer(400, json.dumps(
        {"error": "invalid_request", "received": {"client_id": "wf-client", "client_secret": secret},
         "detail": f"secret {secret} is expired"})))
    log_lines = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log_lines)
    logs.configure("debug")
    try:
        async with channel_sync(database, standin, magento=None, wayfair={"batch_size": 10}) as sync:
            await sync.consume("day", records(DAY))
            assert (await sync.push("wayfair")).gave_up == 3
            standin.script("wayfair", Answer(400, json.dumps({"errors": [
                {"message": "token tok-1 may not write supplier 4242",
                 "request": {"headers": {"Authorization": "Bearer tok-1"}}}]})))
            assert (await sync.push("wayfair")).rejected == 3
            standin.script("overstock", Answer(422, f"key {key} has no access to these SKUs; Authorization: Bearer {key}"))
            assert (await sync.push("overstock")).rejected == 3
            failures = await sync.store.failures(include_resolved=True)
    finally:
        monkeypatch.undo()
        logs.configure()
    assert len(failures) == 9
    token_failure, graphql_failure, overstock_failure = failures[0], failures[3], failures[6]
    assert token_failure.body.startswith("token endpoint: {")
    assert '"error": "invalid_request"' in token_failure.body and "wf-client" in token_failure.body
    assert "token [redacted] may not write supplier 4242" in graphql_failure.body
    assert overstock_failure.body == "key [redacted] has no access to these SKUs; Authorization: [redacted]"
    for text in [*(f.body for f in failures), log_lines.getvalue()]:
        assert secret not in text and "tok-1" not in text and key not in text
