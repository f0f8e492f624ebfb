"""The contract's limits (backorder_events/limits.py, docs/behaviour.md "Limits"): each one
accepted at its value, refused one past it with a reason naming the field and the limit,
and never an exception other than InvalidEvent."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from backorder_events import InvalidEvent, parse_event, parse_event_obj
from backorder_events.generate import models
from backorder_events.limits import (
    MAX_COMMAND_ITEMS,
    MAX_DAYS_TO_BE_BACK,
    MAX_DOCUMENT_LINES,
    MAX_EVENT_BYTES,
    MAX_ID_LENGTH,
    MAX_LINE_QTY,
    MAX_ORDER_LINES,
    MAX_SKU_LENGTH,
    MAX_STOCK_QTY,
    MAX_TEXT_LENGTH,
    MAX_UNIT_PRICE,
)

T0 = "2025-04-30T15:19:00Z"
RANGE = "must be at or after 1900-01-01T00:00:00Z and before 2200-01-01T00:00:00Z"


def message(event_type: str, data: Any, **envelope: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": "e-1", "source": "/oms", "type": event_type,
            "time": T0, "data": data, **envelope}


def order(**data: Any) -> dict[str, Any]:
    base = {"order_id": "o1", "order_date": T0, "lines": [{"line_id": "1", "sku": "S", "qty": 1}]}
    return message("OrderCreated", {**base, **data})


def line(**fields: Any) -> dict[str, Any]:
    return {"line_id": "1", "sku": "S", "qty": 1, **fields}


def adjusted(**fields: Any) -> dict[str, Any]:
    return message("InventoryAdjusted", {"sku": "S", "warehouse_id": "W", **fields})


def reason(raw: str | bytes | dict | None) -> str:
    text = json.dumps(raw) if isinstance(raw, dict) else raw
    with pytest.raises(InvalidEvent) as exc:
        parse_event(text)
    return exc.value.reason


def accepted(raw: dict) -> Any:
    return parse_event(json.dumps(raw))


# -- timestamps ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [
    "0001-01-01T00:00:00+01:00",  # year 0 in UTC: overflowed the conversion
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59-01:00",  # year 10000 in UTC
    "9999-12-31T23:59:59Z",
    "1899-12-31T23:59:59.999999Z",
    "1900-01-01T00:30:00+01:00",  # 1899-12-31T23:30:00Z
    "2200-01-01T00:00:00Z",
    "2199-12-31T23:30:00-01:00",  # 2200-01-01T00:30:00Z
])
def test_a_time_out_of_range_is_refused_without_overflowing(value: str) -> None:
    assert reason(order(order_date=T0) | {"time": value}) == f"OrderCreated: time: {RANGE}"


@pytest.mark.parametrize("value", [
    "1900-01-01T00:00:00Z",
    "1900-01-01T00:30:00-01:00",  # 1900-01-01T01:30:00Z
    "2199-12-31T23:59:59.999999Z",
    "2200-01-01T00:30:00+01:00",  # 2199-12-31T23:30:00Z
    "1950-06-01T12:00:00",  # naive: UTC
])
def test_a_time_within_range_is_accepted(value: str) -> None:
    assert accepted(order() | {"time": value}).time.year in (1900, 1950, 2199)


@pytest.mark.parametrize(("msg", "path"), [
    (order(order_date="0001-01-01T00:00:00+01:00"), "OrderCreated: data.order_date"),
    (order(payment_date="9999-12-31T23:59:59-01:00"), "OrderCreated: data.payment_date"),
    (message("OrderStatusChanged", {"order_id": "o1", "payment_date": "0001-01-01T00:00:00+01:00"}),
     "OrderStatusChanged: data.payment_date"),
    (message("PurchaseOrderUpdated", {"po_id": "P", "lines": [
        {"sku": "S", "qty_ordered": 1, "estimated_delivery_date": "0001-01-01T00:00:00+01:00"}]}),
     "PurchaseOrderUpdated: data.lines[0].estimated_delivery_date"),
    (message("PurchaseOrderUpdated", {"po_id": "P", "lines": [
        {"sku": "S", "qty_ordered": 1, "estimated_delivery_date": "2200-01-01"}]}),
     "PurchaseOrderUpdated: data.lines[0].estimated_delivery_date"),
    (message("ContainerUpdated", {"container_id": "C", "lines": [],
                                  "estimated_arrival_date": "0001-01-01"}),
     "ContainerUpdated: data.estimated_arrival_date"),
])
def test_every_timestamp_field_has_the_range(msg: dict, path: str) -> None:
    assert reason(msg) == f"{path}: {RANGE}"


def test_a_python_datetime_out_of_range_is_refused_too() -> None:
    edge = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    with pytest.raises(InvalidEvent, match="time: must be at or after 1900"):
        parse_event_obj(order() | {"time": edge})


# -- lengths -------------------------------------------------------------------------------

ID_FIELDS = [
    (lambda v: order() | {"id": v}, "OrderCreated: id"),
    (lambda v: order(order_id=v), "OrderCreated: data.order_id"),
    (lambda v: order(company_id=v), "OrderCreated: data.company_id"),
    (lambda v: order(ship_from_warehouse_id=v), "OrderCreated: data.ship_from_warehouse_id"),
    (lambda v: order(lines=[line(line_id=v)]), "OrderCreated: data.lines[0].line_id"),
    (lambda v: message("OrderSplit", {"order_id": "o1", "new_order_id": v,
                                      "lines": [{"line_id": "1", "qty": 1, "new_line_id": "2"}]}),
     "OrderSplit: data.new_order_id"),
    (lambda v: message("POReceived", {"po_id": v, "warehouse_id": "W", "lines": [{"sku": "S", "qty": 1}]}),
     "POReceived: data.po_id"),
    (lambda v: adjusted(warehouse_id=v, delta=1), "InventoryAdjusted: data.warehouse_id"),
    (lambda v: message("ContainerUpdated", {"container_id": v, "lines": []}),
     "ContainerUpdated: data.container_id"),
    (lambda v: message("MarkBackorder", {"order_ids": ["o1", v]}), "MarkBackorder: data.order_ids[1]"),
    (lambda v: message("SettingsChanged", {"settings": {"default_warehouse_id": v}}),
     "SettingsChanged: data.settings.default_warehouse_id"),
]

SKU_FIELDS = [
    (lambda v: order(lines=[line(sku=v)]), "OrderCreated: data.lines[0].sku"),
    (lambda v: adjusted(sku=v, delta=1), "InventoryAdjusted: data.sku"),
    (lambda v: message("ItemReplaced", {"order_id": "o1", "line_id": "1", "new_sku": v}),
     "ItemReplaced: data.new_sku"),
    (lambda v: message("ProductUpserted", {"sku": "S", "replacement_sku": v}),
     "ProductUpserted: data.replacement_sku"),
    (lambda v: message("RecalculateBackorders", {"skus": [v]}), "RecalculateBackorders: data.skus[0]"),
]

TEXT_FIELDS = [
    (lambda v: order() | {"source": v}, "OrderCreated: source"),
    (lambda v: order() | {"subject": v}, "OrderCreated: subject"),
    (lambda v: order(channel=v), "OrderCreated: data.channel"),
    (lambda v: order(customer={"first_name": v}), "OrderCreated: data.customer.first_name"),
    (lambda v: order(customer={"email": v}), "OrderCreated: data.customer.email"),
    (lambda v: order(customer={"shipping_address": {"street1": v}}),
     "OrderCreated: data.customer.shipping_address.street1"),
    (lambda v: order(lines=[line(name=v)]), "OrderCreated: data.lines[0].name"),
    (lambda v: message("WarehouseUpserted", {"warehouse_id": "W", "type": "Sellable", "name": v}),
     "WarehouseUpserted: data.name"),
    (lambda v: message("ProductUpserted", {"sku": "S", "name": v}), "ProductUpserted: data.name"),
]


@pytest.mark.parametrize(("build", "path"), ID_FIELDS, ids=[p for _, p in ID_FIELDS])
def test_ids_are_at_most_max_id_length(build, path) -> None:
    accepted(build("i" * MAX_ID_LENGTH))
    assert reason(build("i" * (MAX_ID_LENGTH + 1))) == (
        f"{path}: String should have at most {MAX_ID_LENGTH} characters")


def test_an_integer_id_is_measured_as_its_digits() -> None:
    accepted(order(order_id=10 ** (MAX_ID_LENGTH - 1)))
    assert "data.order_id: String should have at most 200" in reason(order(order_id=10**MAX_ID_LENGTH))


@pytest.mark.parametrize(("build", "path"), SKU_FIELDS, ids=[p for _, p in SKU_FIELDS])
def test_skus_are_at_most_max_sku_length(build, path) -> None:
    accepted(build("s" * MAX_SKU_LENGTH))
    assert reason(build("s" * (MAX_SKU_LENGTH + 1))) == (
        f"{path}: String should have at most {MAX_SKU_LENGTH} characters")


def test_a_million_character_sku_is_refused() -> None:
    assert reason(adjusted(sku="X" * 1_000_000, delta=1)) == (
        f"InventoryAdjusted: data.sku: String should have at most {MAX_SKU_LENGTH} characters")


@pytest.mark.parametrize(("build", "path"), TEXT_FIELDS, ids=[p for _, p in TEXT_FIELDS])
def test_names_and_free_text_are_at_most_max_text_length(build, path) -> None:
    accepted(build("é" * MAX_TEXT_LENGTH))  # characters, not bytes
    assert reason(build("t" * (MAX_TEXT_LENGTH + 1))) == (
        f"{path}: String should have at most {MAX_TEXT_LENGTH} characters")


# -- quantities ------------------------------------------------------------------------------

QTY_FIELDS = [
    (lambda q: order(lines=[line(qty=q)]), "OrderCreated: data.lines[0].qty", 1),
    (lambda q: message("ItemAdded", {"order_id": "o1", "line": line(qty=q)}),
     "ItemAdded: data.line.qty", 1),
    (lambda q: message("ItemReplaced", {"order_id": "o1", "line_id": "1", "new_sku": "T", "qty": q}),
     "ItemReplaced: data.qty", 1),
    (lambda q: message("OrderSplit", {"order_id": "o1", "new_order_id": "o2",
                                      "lines": [{"line_id": "1", "qty": q, "new_line_id": "1"}]}),
     "OrderSplit: data.lines[0].qty", 1),
    (lambda q: message("ReallocateBackorder", {"order_id": "o1",
                                               "lines": [{"line_id": "1", "backorder_qty": q}]}),
     "ReallocateBackorder: data.lines[0].backorder_qty", 0),
    (lambda q: message("POReceived", {"po_id": "P", "warehouse_id": "W", "lines": [{"sku": "S", "qty": q}]}),
     "POReceived: data.lines[0].qty", 1),
    (lambda q: message("PurchaseOrderUpdated", {"po_id": "P", "lines": [{"sku": "S", "qty_ordered": q}]}),
     "PurchaseOrderUpdated: data.lines[0].qty_ordered", 1),
    (lambda q: message("PurchaseOrderUpdated", {"po_id": "P", "lines": [
        {"sku": "S", "qty_ordered": 1, "qty_received": q}]}),
     "PurchaseOrderUpdated: data.lines[0].qty_received", 0),
    (lambda q: message("ContainerUpdated", {"container_id": "C", "lines": [{"sku": "S", "qty": q}]}),
     "ContainerUpdated: data.lines[0].qty", 0),
]


@pytest.mark.parametrize(("build", "path", "least"), QTY_FIELDS, ids=[p for _, p, _ in QTY_FIELDS])
def test_line_quantities_are_at_most_max_line_qty(build, path, least) -> None:
    accepted(build(MAX_LINE_QTY))
    accepted(build(least))
    assert reason(build(MAX_LINE_QTY + 1)) == (
        f"{path}: Input should be less than or equal to {MAX_LINE_QTY}")
    assert path in reason(build(2**70))


@pytest.mark.parametrize("field", ["delta", "set_to"])
def test_stock_adjustments_are_within_max_stock_qty(field: str) -> None:
    for value in (MAX_STOCK_QTY, -MAX_STOCK_QTY, 0):
        accepted(adjusted(**{field: value}))
    assert reason(adjusted(**{field: MAX_STOCK_QTY + 1})) == (
        f"InventoryAdjusted: data.{field}: Input should be less than or equal to {MAX_STOCK_QTY}")
    assert reason(adjusted(**{field: -MAX_STOCK_QTY - 1})) == (
        f"InventoryAdjusted: data.{field}: Input should be greater than or equal to -{MAX_STOCK_QTY}")


@pytest.mark.parametrize("value", [2**70, 10**30, -(2**70), 2**63, -(2**63) - 1])
def test_quantities_beyond_64_bits_are_refused(value: int) -> None:
    assert reason(adjusted(set_to=value)).startswith("InventoryAdjusted: data.set_to: Input should be")


@pytest.mark.parametrize("price", [
    "1e999", "-1e999", str(MAX_UNIT_PRICE + 1), '"NaN"', '"Infinity"', '"1e10"',
])
def test_a_unit_price_must_be_finite_and_bounded(price: str) -> None:
    raw = json.dumps(order(lines=[line(unit_price=0)])).replace('"unit_price": 0', f'"unit_price": {price}')
    assert reason(raw) == (
        f"OrderCreated: data.lines[0].unit_price: must be a finite number from "
        f"-{MAX_UNIT_PRICE} to {MAX_UNIT_PRICE}")


@pytest.mark.parametrize("price", [9.99, "9.99", -5, MAX_UNIT_PRICE, "0.000001"])
def test_a_sane_unit_price_is_accepted_as_given(price) -> None:
    parsed = accepted(order(lines=[line(unit_price=price)]))
    assert str(parsed.data.lines[0].unit_price) == str(price)


def test_max_days_to_be_back_is_bounded() -> None:
    accepted(message("SettingsChanged", {"settings": {"max_days_to_be_back": MAX_DAYS_TO_BE_BACK}}))
    assert reason(message("SettingsChanged", {"settings": {"max_days_to_be_back": 10**30}})) == (
        "SettingsChanged: data.settings.max_days_to_be_back: "
        f"Input should be less than or equal to {MAX_DAYS_TO_BE_BACK}")


# -- counts ------------------------------------------------------------------------------------

COUNTED = [
    (lambda n: order(lines=[line(line_id=str(i)) for i in range(n)]),
     "OrderCreated: data.lines", MAX_ORDER_LINES),
    (lambda n: message("OrderSplit", {"order_id": "o1", "new_order_id": "o2", "lines": [
        {"line_id": str(i), "qty": 1, "new_line_id": str(i)} for i in range(n)]}),
     "OrderSplit: data.lines", MAX_ORDER_LINES),
    (lambda n: message("ReallocateBackorder", {"order_id": "o1", "lines": [
        {"line_id": str(i), "backorder_qty": 0} for i in range(n)]}),
     "ReallocateBackorder: data.lines", MAX_ORDER_LINES),
    (lambda n: message("POReceived", {"po_id": "P", "warehouse_id": "W",
                                      "lines": [{"sku": "S", "qty": 1}] * n}),
     "POReceived: data.lines", MAX_DOCUMENT_LINES),
    (lambda n: message("PurchaseOrderUpdated", {"po_id": "P", "lines": [{"sku": "S", "qty_ordered": 1}] * n}),
     "PurchaseOrderUpdated: data.lines", MAX_DOCUMENT_LINES),
    (lambda n: message("ContainerUpdated", {"container_id": "C", "lines": [{"sku": "S", "qty": 1}] * n}),
     "ContainerUpdated: data.lines", MAX_DOCUMENT_LINES),
    (lambda n: message("MarkBackorder", {"order_ids": ["o"] * n}),
     "MarkBackorder: data.order_ids", MAX_COMMAND_ITEMS),
    (lambda n: message("MarkNotBackorder", {"order_ids": ["o"] * n}),
     "MarkNotBackorder: data.order_ids", MAX_COMMAND_ITEMS),
    (lambda n: message("RecalculateBackorders", {"order_ids": ["o"] * n}),
     "RecalculateBackorders: data.order_ids", MAX_COMMAND_ITEMS),
    (lambda n: message("RecalculateBackorders", {"skus": ["S"] * n}),
     "RecalculateBackorders: data.skus", MAX_COMMAND_ITEMS),
]


@pytest.mark.parametrize(("build", "path", "limit"), COUNTED, ids=[p for _, p, _ in COUNTED])
def test_lines_and_ids_per_message_are_counted(build, path, limit) -> None:
    accepted(build(limit))
    assert reason(build(limit + 1)) == (
        f"{path}: List should have at most {limit} items after validation, not {limit + 1}")


# -- the whole message -------------------------------------------------------------------------


def padded(size: int, char: str = "x") -> str:
    """An acceptable message of exactly `size` bytes (padded in an unknown field)."""
    text = json.dumps(order() | {"padding": ""}, ensure_ascii=False)
    missing = size - len(text.encode())
    assert missing % len(char.encode()) == 0
    return text.replace('"padding": ""', f'"padding": "{char * (missing // len(char.encode()))}"')


def test_a_message_of_max_event_bytes_is_accepted_and_one_byte_more_is_not() -> None:
    accepted_text = padded(MAX_EVENT_BYTES)
    parse_event(accepted_text)
    parse_event(accepted_text.encode())
    too_big = padded(MAX_EVENT_BYTES + 1)
    expected = f"message of {MAX_EVENT_BYTES + 1} bytes is larger than the limit of {MAX_EVENT_BYTES} bytes"
    assert reason(too_big) == reason(too_big.encode()) == expected


def test_the_size_is_counted_in_bytes_not_characters() -> None:
    text = padded(MAX_EVENT_BYTES + 1, char="é")  # fewer characters than bytes
    assert len(text) < MAX_EVENT_BYTES
    assert reason(text).startswith(f"message of {MAX_EVENT_BYTES + 1} bytes")


def test_the_size_is_checked_before_parsing() -> None:
    error = reason(b"{" * (MAX_EVENT_BYTES + 1))  # would fail JSON parsing otherwise
    assert error.startswith("message of") and "larger than the limit" in error


def test_a_record_without_a_value_is_refused() -> None:
    assert reason(None) == "empty record: no value"


# -- NUL ------------------------------------------------------------------------------------------

NUL = "\u0000"


@pytest.mark.parametrize(("msg", "expected"), [
    (order(order_id=f"o{NUL}1"), "OrderCreated: data.order_id:"),
    (order(customer={"first_name": f"Ann{NUL}"}), "OrderCreated: data.customer.first_name:"),
    (order(lines=[line(sku=f"S{NUL}")]), "OrderCreated: data.lines[0].sku:"),
    (order() | {"id": f"e{NUL}"}, "OrderCreated: id:"),
    (order() | {"unknown": {"deep": [f"{NUL}"]}}, "OrderCreated: unknown.deep[0]:"),
    (order() | {f"key{NUL}": 1}, "OrderCreated: (event): the field name 'key\\x00'"),
    (order(customer={f"k{NUL}": 1}), "OrderCreated: data.customer: the field name 'k\\x00'"),
    (message("NoSuchType", {"x": NUL}), "data.x:"),
])
def test_nul_is_refused_anywhere_naming_where(msg: dict, expected: str) -> None:
    text = json.dumps(msg)
    assert "\\u0000" in text  # as JSON writes it: an escape, no NUL byte
    assert reason(text) == f"{expected} must not contain a NUL character (U+0000)"
    with pytest.raises(InvalidEvent) as exc:
        parse_event_obj(msg)
    assert exc.value.reason == f"{expected} must not contain a NUL character (U+0000)"


def test_a_nul_refusal_still_names_the_event() -> None:
    with pytest.raises(InvalidEvent) as exc:
        parse_event(json.dumps(order(order_id=f"o{NUL}")))
    assert (exc.value.event_id, exc.value.event_type) == ("e-1", "OrderCreated")


def test_an_escaped_backslash_before_u0000_is_not_a_nul() -> None:
    text = json.dumps(order(channel="C:\\u0000"))  # the text backslash-u-0-0-0-0
    assert "\\\\u0000" in text
    assert accepted(json.loads(text)).data.channel == "C:\\u0000"
    assert parse_event(text).data.channel == "C:\\u0000"


def test_a_raw_nul_byte_is_not_json() -> None:
    assert reason(json.dumps(order()).replace('"o1"', '"o\x001"').encode()).startswith("not valid JSON")


def test_deep_nesting_with_a_nul_fails_cleanly() -> None:
    deep = '{"a": ' * 5000 + '"\\u0000"' + "}" * 5000
    assert reason(deep).startswith("not valid JSON")


def test_a_str_that_is_not_unicode_is_refused_cleanly() -> None:
    assert reason('{"type": "\ud800"}') == "not valid JSON: not UTF-8 text"


# -- the JSON Schemas say it ----------------------------------------------------------------------


def test_the_json_schemas_carry_the_limits() -> None:
    schema = models()["OrderCreated"].model_json_schema()
    data, order_line = schema["$defs"]["OrderCreatedData"], schema["$defs"]["OrderLine"]
    assert data["properties"]["lines"]["maxItems"] == MAX_ORDER_LINES
    assert order_line["properties"]["sku"]["maxLength"] == MAX_SKU_LENGTH
    assert order_line["properties"]["qty"]["maximum"] == MAX_LINE_QTY
    assert data["properties"]["order_id"]["anyOf"][0]["maxLength"] == MAX_ID_LENGTH
    assert schema["properties"]["time"]["formatMinimum"] == "1900-01-01T00:00:00Z"
    assert str(MAX_EVENT_BYTES) in schema["description"]
    adjusted_schema = models()["InventoryAdjusted"].model_json_schema()
    set_to = adjusted_schema["$defs"]["InventoryAdjustedData"]["properties"]["set_to"]["anyOf"][0]
    assert (set_to["minimum"], set_to["maximum"]) == (-MAX_STOCK_QTY, MAX_STOCK_QTY)


def test_the_id_and_type_of_a_refused_message_are_cut_to_fit() -> None:
    with pytest.raises(InvalidEvent) as exc:
        parse_event(json.dumps(order() | {"id": "i" * 1_000_000, "type": "T" * 1_000}))
    assert len(exc.value.event_id) == len(exc.value.event_type) == MAX_ID_LENGTH
    with pytest.raises(InvalidEvent):
        parse_event_obj({"id": 10**5000, "type": "MarkBackorder"})  # too long to even print
