"""`backorders serve`'s API over the state a runtime keeps (SQLite and PostgreSQL), through
httpx's ASGI transport: every answer is computed from the engine that replay of the same
day leaves, never written down here."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from itertools import islice

import httpx
import pytest
from backorders_platform.database import sqlite_url
from backorders_platform.migrations import drop_schema
from backorders_workload import WorkloadShape
from conftest import day_and_expected, postgres_url
from recalculator.adapters.search import ORDER_FILTERS
from recalculator.api.app import create_app
from recalculator.api.views import day, iso
from recalculator.domain.explain import explain_order
from recalculator.domain.incoming import on_order
from recalculator.runtime.embedded import EmbeddedRuntime


@pytest.fixture(scope="module")
def generated():
    lines, final, expected = day_and_expected(23, WorkloadShape(orders=400, skus=40))
    return [(n, raw.decode()) for n, raw in enumerate([*lines, final], 1)], expected


async def _fill(url: str, schema: str | None, records) -> None:
    async with EmbeddedRuntime(url, batch_size=200, schema=schema) as runtime:
        await runtime.consume("day", records)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def state(request, tmp_path_factory, generated):
    """The day consumed by the embedded runtime into SQLite, or into a PostgreSQL schema."""
    records, _ = generated
    if request.param == "sqlite":
        url, schema = sqlite_url(tmp_path_factory.mktemp("api") / "state.sqlite"), None
    else:
        url, schema = postgres_url(), f"test_api_{uuid.uuid4().hex[:12]}"
    asyncio.run(_fill(url, schema, records))
    yield url, schema
    if schema:
        asyncio.run(drop_schema(url, schema))


@pytest.fixture
async def client(state):
    app = create_app(*state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        yield http
    await app.state.db.dispose()


@pytest.fixture
def expected(generated):
    return generated[1]


def order_summary(order) -> dict:
    return {"order_id": order.order_id, "company_id": order.company_id, "order_date": iso(order.order_date),
            "backorder_status": order.published_status,
            "backorder_qty": sum(line.published for line in order.lines.values()),
            "qty": sum(line.qty for line in order.lines.values())}


async def all_pages(client, path: str, params: dict, limit: int = 97) -> tuple[int, list[dict]]:
    items, offset = [], 0
    while True:
        response = await client.get(path, params={**params, "limit": limit, "offset": offset})
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        offset += limit
        if offset >= page["total"]:
            return page["total"], items


@pytest.mark.parametrize("backorder", sorted(ORDER_FILTERS))
async def test_order_search_by_backorder_filter(client, expected, backorder):
    wanted = sorted((o for o in expected.orders.values() if o.published_status in ORDER_FILTERS[backorder]),
                    key=lambda o: (o.order_date, o.order_id))
    total, items = await all_pages(client, "/orders", {"backorder": backorder})
    assert total == len(wanted) and items == [order_summary(o) for o in wanted]
    if backorder == "full-or-partial":
        assert wanted, "the generated day has backorders"


async def test_order_search_by_company_sku_and_dates_sorted(client, expected):
    orders = sorted(expected.orders.values(), key=lambda o: (o.order_date, o.order_id))
    company = orders[0].company_id
    sku = next(iter(orders[len(orders) // 2].lines.values())).sku
    start, end = orders[len(orders) // 4].order_date, orders[3 * len(orders) // 4].order_date
    wanted = [o for o in orders if o.company_id == company and start <= o.order_date <= end
              and any(line.sku == sku for line in o.lines.values())
              and o.published_status in ORDER_FILTERS["not-full"]]
    wanted.sort(key=lambda o: (-sum(line.published for line in o.lines.values()), o.order_id))
    params = {"company_id": company, "sku": sku, "placed_from": iso(start), "placed_to": iso(end),
              "backorder": "not-full", "sort": "-backorder_qty"}
    total, items = await all_pages(client, "/orders", params, limit=3)
    assert total == len(wanted) and wanted
    # Descending by backorder, ties by order id descending too.
    assert [i["order_id"] for i in items] == [o.order_id for o in sorted(
        wanted, key=lambda o: (sum(line.published for line in o.lines.values()), o.order_id), reverse=True)]
    day_only = await client.get("/orders", params={"placed_from": iso(start)[:10], "placed_to": iso(start)[:10],
                                                   "limit": 500})
    same_day = [o.order_id for o in orders if iso(o.order_date)[:10] == iso(start)[:10]]
    assert [i["order_id"] for i in day_only.json()["items"]] == same_day[:500]


async def test_order_search_by_sku_alone_and_with_a_status(client, expected):
    by_sku: dict[str, list] = {}
    for order in expected.orders.values():
        for sku in {line.sku for line in order.lines.values()}:
            by_sku.setdefault(sku, []).append(order)
    common = max(by_sku, key=lambda s: (len(by_sku[s]), s))
    rare = min(by_sku, key=lambda s: (len(by_sku[s]), s))
    for sku in (common, rare):
        wanted = sorted(by_sku[sku], key=lambda o: (o.order_date, o.order_id))
        total, items = await all_pages(client, "/orders", {"sku": sku}, limit=7)
        assert total == len(wanted) and items == [order_summary(o) for o in wanted]
        partly = [o for o in wanted if o.published_status in ORDER_FILTERS["full-or-partial"]]
        total, items = await all_pages(client, "/orders", {"sku": sku, "backorder": "full-or-partial",
                                                           "sort": "-order_date"}, limit=7)
        assert total == len(partly) and items == [order_summary(o) for o in reversed(partly)]
    assert len(by_sku[common]) > 10


async def test_one_order_with_its_explanation(client, expected):
    backordered = [o for o in expected.orders.values() if o.published_status != "None"]
    for order in backordered[:5] + list(expected.orders.values())[:3]:
        response = await client.get(f"/orders/{order.order_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert {k: body[k] for k in order_summary(order)} == order_summary(order)
        assert body["lines"] == [dataclasses.asdict(e) for e in explain_order(expected, order.order_id)]
        assert {line["line_id"]: line["published"] for line in body["lines"]} == {
            line.line_id: line.published for line in order.lines.values()}
    dated = next(o for o in backordered if any(expected.expected_date(line) for line in o.lines.values()))
    assert any(line["expected_date"] for line in (await client.get(f"/orders/{dated.order_id}")).json()["lines"])


async def test_product_search_by_backorder_range(client, expected):
    totals = {sku: qty for sku, qty in expected.totals.items() if qty}
    low, high = sorted(totals.values())[len(totals) // 3], sorted(totals.values())[2 * len(totals) // 3]
    total, items = await all_pages(client, "/products", {"backorder_from": low, "backorder_to": high}, limit=5)
    wanted = sorted(((s, q) for s, q in totals.items() if low <= q <= high), key=lambda x: (-x[1], x[0]))
    assert total == len(wanted) and [(i["sku"], i["backorder_qty"]) for i in items] == wanted
    total, items = await all_pages(client, "/products", {"sort": "sku"})
    assert [(i["sku"], i["backorder_qty"]) for i in items] == sorted(totals.items())


async def test_one_sku_position_and_queue(client, expected):
    skus = sorted(expected.lines_by_sku, key=lambda s: (-expected.totals.get(s, 0), s))[:3]
    now = expected.last_time
    for sku in skus:
        response = await client.get(f"/skus/{sku}", params={"queue_limit": 25})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["backordered"] == expected.totals[sku]
        assert body["available"] == expected.available(sku, now)
        assert body["stock"] == expected.stock.get(sku, {})
        supply = on_order(expected.incoming.get(sku), expected.settings.use_shipping_containers_for_po,
                          expected.totals[sku])
        assert body["on_order"] == {"qty": supply.qty, "earliest_eta": day(supply.earliest_eta),
                                    "next_available": day(supply.next_available)}
        pools = expected.pools_by_sku[sku]
        assert [p["warehouse_id"] for p in body["pools"]] == sorted(pools, key=lambda w: w or "")
        for view in body["pools"]:
            pool = pools[view["warehouse_id"]]
            expected.prepare(pool, now)
            assert view["queue_length"] == len(pool)
            assert [(q["order_id"], q["line_id"], q["allocated"], q["backorder"], q["expected_date"])
                    for q in view["queue"]] == [
                (line.order.order_id, line.line_id, line.alloc, line.published, iso(expected.expected_date(line)))
                for line in islice(pool.lines_in_order(), 25)]


@pytest.mark.parametrize("path, params, words", [
    ("/orders", {"backorder": "fullish"}, "backorder"),
    ("/orders", {"limit": 0}, "limit"),
    ("/orders", {"limit": 501}, "limit"),
    ("/orders", {"offset": -1}, "offset"),
    ("/orders", {"offset": 2**70}, "offset"),
    ("/orders", {"sort": "doc"}, "sort"),
    ("/orders", {"placed_from": "yesterday"}, "placed_from"),
    ("/orders", {"placed_to": "2025-13-40"}, "placed_to"),
    ("/orders", {"placed_from": "9999-01-01"}, "out of range"),
    ("/orders", {"sku": "A\x00B"}, "sku"),
    ("/orders", {"company_id": "x" * 201}, "company_id"),
    ("/products", {"backorder_from": "many"}, "backorder_from"),
    ("/products", {"backorder_from": 5, "backorder_to": 2}, "below"),
    ("/products", {"backorder_to": 2**63}, "backorder_to"),
    ("/skus/ABC", {"queue_limit": -1}, "queue_limit"),
    ("/orders/bad%00id", {}, "order_id"),
])
async def test_bad_input_is_a_clear_4xx(client, path, params, words):
    response = await client.get(path, params=params)
    assert response.status_code == 422, response.text
    assert words in response.json()["detail"]


async def test_unknown_order_and_sku_are_404(client):
    for path, words in (("/orders/no-such-order", "unknown order"), ("/skus/NO-SUCH-SKU", "unknown SKU")):
        response = await client.get(path)
        assert response.status_code == 404 and words in response.json()["detail"]


async def test_metrics_count_the_requests(client):
    await client.get("/orders", params={"backorder": "full", "limit": 1})
    await client.get("/orders", params={"limit": 0})
    text = (await client.get("/metrics")).text
    assert 'backorders_api_requests_total{method="GET",route="/orders",status="200"}' in text
    assert 'backorders_api_requests_total{method="GET",route="/orders",status="422"}' in text
    assert "backorders_api_request_seconds_bucket" in text


async def test_the_loaded_engine_is_kept_only_while_the_state_stays_as_it_was(tmp_path, generated):
    records, expected = generated
    url = sqlite_url(tmp_path / "state.sqlite")
    half = len(records) // 2
    await _fill(url, None, records[:half])
    order = next(o for o in expected.orders.values() if o.published_status != "None")
    app = create_app(url)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        for _ in range(3):
            assert (await http.get(f"/skus/{next(iter(order.lines.values())).sku}")).status_code == 200
        assert app.state.loaded["loads"] == 1  # one load while nothing was written
        search = {"backorder": "full-or-partial", "limit": 1}
        half_total = (await http.get("/orders", params=search)).json()["total"]
        async with EmbeddedRuntime(url, batch_size=200) as runtime:  # the rest of the day
            await runtime.consume("day", records[half:])
        body = (await http.get(f"/orders/{order.order_id}")).json()
        assert app.state.loaded["loads"] == 2
        assert body["lines"] == [dataclasses.asdict(e) for e in explain_order(expected, order.order_id)]
        # A search's total is kept only while the state stays as it was, too.
        total = (await http.get("/orders", params=search)).json()["total"]
        assert total == sum(o.published_status in ORDER_FILTERS["full-or-partial"] for o in expected.orders.values())
        assert total != half_total
    await app.state.db.dispose()
