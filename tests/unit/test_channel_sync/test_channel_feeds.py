"""Each channel's row for a SKU, and the wire payloads built from rows (pure)."""

from __future__ import annotations

import json

import pytest
from channel_support import (
    cloud,
    container,
    position,
    product,
    purchase_order,
    settings,
)
from channel_sync.channels.files import render
from channel_sync.channels.magento import stock_item_request
from channel_sync.channels.overstock import csv_body
from channel_sync.channels.wayfair import graphql_errors, request_body
from channel_sync.domain import feeds
from channel_sync.domain.feeds import ChannelOptions, canonical, changed_rows
from channel_sync.domain.projection import Projection
from channel_sync.service import parse

WAYFAIR = ChannelOptions("wayfair", supplier_id=4242)
OVERSTOCK = ChannelOptions("overstock")
MAGENTO = ChannelOptions("magento")


def projection(*events: dict) -> Projection:
    p = Projection()
    for raw in events:
        p.apply(parse(json.dumps(raw)))
    return p


def hammock(*extra: dict) -> Projection:
    """CAT-HAMMOCK: 0 available, 3 backordered; PO-1 brings 2 on May 5, PO-2 10 on May 9."""
    return projection(
        product("CAT-HAMMOCK", "Cat Hammock, Grey"),
        purchase_order("PO-1", ("CAT-HAMMOCK", 2, 0, "2025-05-05")),
        purchase_order("PO-2", ("CAT-HAMMOCK", 12, 2, "2025-05-09")),
        container("MSCU7", "2025-05-20", {"CAT-HAMMOCK": 48}),
        position("CAT-HAMMOCK", 0, 3),
        *extra,
    )


def test_wayfair_row_sends_the_date_a_new_buyer_gets():
    row = feeds.row(hammock(), WAYFAIR, "CAT-HAMMOCK")
    # 12 on order; the first 3 are promised, so a new unit comes with PO-2 (May 9), not May 5.
    assert row == {
        "supplierId": 4242, "supplierPartNumber": "CAT-HAMMOCK", "quantityOnHand": 0,
        "quantityBackorder": 3, "quantityOnOrder": 12, "itemNextAvailabilityDate": "05-09-2025 00:00:00",
        "discontinued": False, "productNameAndOptions": "Cat Hammock, Grey",
    }


def test_with_containers_for_po_the_container_quantity_and_arrival_date_are_sent():
    p = hammock(settings(use_shipping_containers_for_po=True))
    wayfair = feeds.row(p, WAYFAIR, "CAT-HAMMOCK")
    assert (wayfair["quantityOnOrder"], wayfair["itemNextAvailabilityDate"]) == (48, "05-20-2025 00:00:00")
    assert feeds.row(p, OVERSTOCK, "CAT-HAMMOCK") == {
        "sku": "CAT-HAMMOCK", "quantity": 0, "quantityOnOrder": 48, "eta": "2025-05-20"}


def test_overstock_row_and_feed():
    row = feeds.row(hammock(), OVERSTOCK, "CAT-HAMMOCK")
    assert row == {"sku": "CAT-HAMMOCK", "quantity": 0, "quantityOnOrder": 12, "eta": "2025-05-09"}
    none = {"sku": "MUG, blue", "quantity": 4, "quantityOnOrder": 0, "eta": None}
    assert csv_body([row, none]) == (
        "SKU,Quantity,QuantityOnOrder,ETA\n"
        "CAT-HAMMOCK,0,12,2025-05-09\n"
        '"MUG, blue",4,0,\n'
    )


def test_magento_allows_backorders_while_supply_on_order_can_serve_a_new_buyer():
    row = feeds.row(hammock(), MAGENTO, "CAT-HAMMOCK")
    assert row == {"sku": "CAT-HAMMOCK", "itemId": 1, "stockItem": {
        "qty": 0, "is_in_stock": True, "backorders": 1, "use_config_backorders": False}}
    # Everything on order is promised: no backorders, out of stock.
    taken = hammock(position("CAT-HAMMOCK", 0, 12))
    assert feeds.row(taken, MAGENTO, "CAT-HAMMOCK")["stockItem"] == {
        "qty": 0, "is_in_stock": False, "backorders": 0, "use_config_backorders": False}
    assert stock_item_request(row) == (
        "/rest/V1/products/CAT-HAMMOCK/stockItems/1",
        {"stockItem": {"qty": 0, "is_in_stock": True, "backorders": 1, "use_config_backorders": False}},
    )


def test_magento_tags_are_left_out_when_the_seller_turned_them_off():
    off = hammock(settings(send_magento_backorder_tags=False))
    assert feeds.row(off, MAGENTO, "CAT-HAMMOCK")["stockItem"] == {"qty": 0, "is_in_stock": False}
    # A channel's own setting wins over the client setting.
    forced = ChannelOptions("magento", send_backorder_tags=True, backorders_value=2, stock_item_id=3)
    row = feeds.row(off, forced, "CAT-HAMMOCK")
    assert row["itemId"] == 3 and row["stockItem"]["backorders"] == 2


def test_listing_mapping_and_discontinued():
    p = projection(position("CAT-1", 5, 0), position("DOG-1", 2, 0), position("MUG-1", 1, 0))
    options = ChannelOptions("wayfair", listed=("CAT-*", "DOG-1"), sku_map={"CAT-1": "WF-778"},
                             discontinued=frozenset({"DOG-1"}), supplier_id=1)
    rows = feeds.rows(p, options, ["CAT-1", "DOG-1", "MUG-1", "UNKNOWN"])
    assert rows["CAT-1"]["supplierPartNumber"] == "WF-778"
    assert rows["DOG-1"]["discontinued"] is True
    assert rows["MUG-1"] is None  # not listed
    assert rows["UNKNOWN"] is None  # no position yet
    assert rows["CAT-1"]["productNameAndOptions"] == "CAT-1"  # no name known: the SKU


def test_only_rows_that_differ_from_the_accepted_ones_are_sent():
    p = projection(position("A", 5, 0), position("B", 0, 2))
    desired = feeds.rows(p, OVERSTOCK, ["A", "B", "C"])
    accepted = {"A": canonical(desired["A"]), "B": canonical({**desired["B"], "quantity": 9})}
    assert changed_rows(desired, accepted) == {"B": desired["B"]}
    assert changed_rows(desired, {}) == {"A": desired["A"], "B": desired["B"]}


def test_wayfair_request_and_errors():
    row = feeds.row(hammock(), WAYFAIR, "CAT-HAMMOCK")
    body = request_body([row])
    assert body["variables"] == {"inventory": [row], "feedKind": "DIFFERENTIAL"}
    assert body["query"].startswith("mutation inventory(") and "feed_kind: $feedKind" in body["query"]
    assert graphql_errors('{"data": {"inventory": {"save": {"handle": "h", "errors": []}}}}') == []
    assert graphql_errors('{"errors": [{"message": "bad"}]}') == [{"message": "bad"}]
    assert graphql_errors('{"data": {"inventory": {"save": {"errors": [{"key": "X", "message": "m"}]}}}}') == [
        {"key": "X", "message": "m"}]
    assert graphql_errors("<html>") != []


@pytest.mark.parametrize("kind, extension", [("wayfair", "json"), ("overstock", "csv"), ("magento", "jsonl")])
def test_the_file_sink_writes_what_http_would_send(kind, extension):
    row = feeds.row(hammock(), ChannelOptions(kind, supplier_id=1), "CAT-HAMMOCK")
    ext, content = render(kind, [row])
    assert ext == extension
    if kind == "wayfair":
        assert json.loads(content) == request_body([row])
    elif kind == "overstock":
        assert content == csv_body([row])
    else:
        path, body = stock_item_request(row)
        assert json.loads(content) == {"method": "PUT", "path": path, "body": body}


def test_an_upsert_without_a_name_keeps_the_name_known():
    p = hammock()
    nameless = parse(json.dumps(cloud("ProductUpserted", {"sku": "CAT-HAMMOCK"})))
    assert p.apply(nameless) == frozenset()
    assert feeds.row(p, WAYFAIR, "CAT-HAMMOCK")["productNameAndOptions"] == "Cat Hammock, Grey"
    assert p.apply(parse(json.dumps(product("CAT-HAMMOCK", "Cat Hammock, Blue")))) == {"CAT-HAMMOCK"}
    assert p.names["CAT-HAMMOCK"] == "Cat Hammock, Blue"
