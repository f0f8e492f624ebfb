"""Every message shape of events.md, as written, with only required fields and with all fields."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from typing import Any

import pytest
from backorder_events import (
    INPUT_EVENT_TYPES,
    InvalidEvent,
    OrderStatus,
    PaymentStatus,
    parse_event,
)

T0 = "2025-04-30T15:19:00Z"


def message(event_type: str, data: Any, **envelope: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": "e-42", "source": "/oms", "type": event_type,
            "time": T0, "data": data, **envelope}


def parse(msg: dict[str, Any]) -> Any:
    return parse_event(json.dumps(msg))


def reason(msg: dict[str, Any]) -> str:
    with pytest.raises(InvalidEvent) as exc:
        parse(msg)
    return exc.value.reason


MINIMAL: dict[str, dict[str, Any]] = {
    "OrderCreated": {"order_id": "5145827", "order_date": T0,
                     "lines": [{"line_id": "1", "sku": "SKU-1", "qty": 2}]},
    "OrderSplit": {"order_id": "5145827", "new_order_id": "5145828",
                   "lines": [{"line_id": "1", "qty": 1, "new_line_id": "9"}]},
    "ItemAdded": {"order_id": "5145827", "line": {"line_id": "2", "sku": "SKU-2", "qty": 1}},
    "ItemReplaced": {"order_id": "5145827", "line_id": "1", "new_sku": "SKU-3"},
    "OrderStatusChanged": {"order_id": "5145827", "order_status": "OnHold"},
    "POReceived": {"po_id": "PO-1", "warehouse_id": "WH-1", "lines": [{"sku": "SKU-1", "qty": 5}]},
    "InventoryAdjusted": {"sku": "SKU-1", "warehouse_id": "WH-1", "delta": -3},
    "WarehouseUpserted": {"warehouse_id": "WH-2", "type": "Dropship"},
    "ProductUpserted": {"sku": "SKU-1"},
    "SettingsChanged": {"settings": {}},
    "PurchaseOrderUpdated": {"po_id": "PO-1", "lines": [{"sku": "SKU-1", "qty_ordered": 10}]},
    "ContainerUpdated": {"container_id": "C-1", "lines": []},
    "RecalculateBackorders": {},
    "ReallocateBackorder": {"order_id": "5145827", "lines": [{"line_id": "1", "backorder_qty": 0}]},
    "MarkBackorder": {"order_ids": ["5145827"]},
    "MarkNotBackorder": {"order_ids": ["5145827"]},
}

# Every field of every data model, in canonical form: the parsed event dumps back to exactly this.
FULL: dict[str, dict[str, Any]] = {
    "OrderCreated": {
        "order_id": "5145827", "order_date": "2025-04-30T15:19:00Z", "order_status": "InProcess",
        "payment_status": "Charged", "payment_date": "2025-04-30T15:25:00Z", "rush": True,
        "picked": True, "ship_from_warehouse_id": "WH-1", "company_id": "acme",
        "channel": "Amazon",
        "customer": {
            "email": "ann@example.com", "first_name": "Ann", "last_name": "Lee",
            "shipping_address": {
                "name": "Ann Lee", "company": "Lee Ltd", "street1": "1 Main St",
                "street2": "Apt 2", "city": "Springfield", "state": "IL",
                "postal_code": "62701", "country": "US", "phone": "+1 555 0100",
            },
        },
        "lines": [
            {"line_id": "1", "sku": "SKU-1", "qty": 2, "unit_price": "9.99", "name": "Widget"},
            {"line_id": "2", "sku": "SKU-2", "qty": 1, "unit_price": 19.5, "name": None},
        ],
    },
    "OrderSplit": {"order_id": "5145827", "new_order_id": "5145828", "lines": [
        {"line_id": "1", "qty": 1, "new_line_id": "9"},
        {"line_id": "2", "qty": 3, "new_line_id": "10"},
    ]},
    "ItemAdded": {"order_id": "5145827", "line": {
        "line_id": "3", "sku": "SKU-3", "qty": 4, "unit_price": "1.25", "name": "Gadget"}},
    "ItemReplaced": {"order_id": "5145827", "line_id": "1", "new_sku": "SKU-9", "qty": 3},
    "OrderStatusChanged": {
        "order_id": "5145827", "order_status": "OnHold", "payment_status": "Authorized",
        "payment_date": "2025-05-01T08:00:00Z", "rush": False, "picked": True,
        "ship_from_warehouse_id": "WH-2",
    },
    "POReceived": {"po_id": "PO-1", "warehouse_id": "WH-1",
                   "lines": [{"sku": "SKU-1", "qty": 5}, {"sku": "SKU-2", "qty": 1}]},
    "InventoryAdjusted": {"sku": "SKU-1", "warehouse_id": "WH-1", "delta": None, "set_to": -2,
                          "recalculate": True},
    "WarehouseUpserted": {"warehouse_id": "WH-3", "type": "FBA", "name": "Amazon FBA"},
    "ProductUpserted": {"sku": "SKU-1", "replacement_sku": "SKU-1B", "name": "Widget"},
    "SettingsChanged": {"settings": {"max_days_to_be_back": 30, "warehouse_based": True,
                                     "default_warehouse_id": "WH-1"}},
    "PurchaseOrderUpdated": {"po_id": "PO-1", "lines": [
        {"sku": "SKU-1", "qty_ordered": 10, "qty_received": 4,
         "estimated_delivery_date": "2025-05-10T00:00:00Z"},
    ]},
    "ContainerUpdated": {"container_id": "C-1", "estimated_arrival_date": "2025-05-20T12:00:00Z",
                         "lines": [{"sku": "SKU-1", "qty": 6}, {"sku": "SKU-2", "qty": 0}]},
    "RecalculateBackorders": {"order_ids": ["5145827", "5145828"], "skus": ["SKU-1"]},
    "ReallocateBackorder": {"order_id": "5145827", "lines": [
        {"line_id": "1", "backorder_qty": 2}, {"line_id": "2", "backorder_qty": 0}]},
    "MarkBackorder": {"order_ids": ["5145827", "5145828"]},
    "MarkNotBackorder": {"order_ids": ["5145827"]},
}

# Field names of events.md's tables: the schema must accept each of them.
EVENTS_MD_FIELDS: dict[str, set[str]] = {
    "OrderCreated": {"order_id", "order_date", "order_status", "payment_status", "payment_date",
                     "rush", "picked", "ship_from_warehouse_id", "company_id", "channel",
                     "customer", "lines"},
    "OrderSplit": {"order_id", "new_order_id", "lines"},
    "ItemAdded": {"order_id", "line"},
    "ItemReplaced": {"order_id", "line_id", "new_sku", "qty"},
    "OrderStatusChanged": {"order_id", "order_status", "payment_status", "payment_date", "rush",
                           "picked", "ship_from_warehouse_id"},
    "POReceived": {"po_id", "warehouse_id", "lines"},
    "InventoryAdjusted": {"sku", "warehouse_id", "delta", "set_to", "recalculate"},
    "WarehouseUpserted": {"warehouse_id", "type", "name"},
    "ProductUpserted": {"sku", "replacement_sku", "name"},
    "SettingsChanged": {"settings"},
    "PurchaseOrderUpdated": {"po_id", "lines"},
    "ContainerUpdated": {"container_id", "estimated_arrival_date", "lines"},
    "RecalculateBackorders": {"order_ids", "skus"},
    "ReallocateBackorder": {"order_id", "lines"},
    "MarkBackorder": {"order_ids"},
    "MarkNotBackorder": {"order_ids"},
}

TYPES = sorted(INPUT_EVENT_TYPES)


def test_examples_cover_every_input_type() -> None:
    assert set(MINIMAL) == set(FULL) == set(EVENTS_MD_FIELDS) == set(INPUT_EVENT_TYPES)
    assert len(INPUT_EVENT_TYPES) == 16


@pytest.mark.parametrize("event_type", TYPES)
def test_events_md_field_names_exist(event_type: str) -> None:
    data_model = INPUT_EVENT_TYPES[event_type].model_fields["data"].annotation
    assert EVENTS_MD_FIELDS[event_type] == set(data_model.model_fields)


@pytest.mark.parametrize("event_type", TYPES)
def test_minimal_message_accepted(event_type: str) -> None:
    event = parse(message(event_type, MINIMAL[event_type]))
    assert type(event) is INPUT_EVENT_TYPES[event_type]
    assert event.type == event_type
    assert event.time == datetime(2025, 4, 30, 15, 19, tzinfo=timezone.utc)
    assert event.subject is None
    assert event.datacontenttype == "application/json"


@pytest.mark.parametrize("event_type", TYPES)
def test_full_message_accepted_and_dumps_back(event_type: str) -> None:
    msg = message(event_type, FULL[event_type], subject="5145827",
                  datacontenttype="application/json")
    event = parse(msg)
    assert type(event) is INPUT_EVENT_TYPES[event_type]
    assert event.model_dump(mode="json") == msg
    assert parse_event(event.model_dump_json()) == event


def test_full_examples_set_every_field() -> None:
    for event_type, data in FULL.items():
        data_model = INPUT_EVENT_TYPES[event_type].model_fields["data"].annotation
        assert set(data) == set(data_model.model_fields), event_type


def test_order_created_defaults() -> None:
    data = parse(message("OrderCreated", MINIMAL["OrderCreated"])).data
    assert data.order_status is OrderStatus.InProcess
    assert data.payment_status is PaymentStatus.Unpaid
    assert (data.payment_date, data.rush, data.picked) == (None, False, False)
    assert (data.ship_from_warehouse_id, data.company_id, data.channel) == (None, "default", None)
    assert data.customer is None
    assert (data.lines[0].unit_price, data.lines[0].name) == (None, None)


def test_other_defaults() -> None:
    assert parse(message("ItemReplaced", MINIMAL["ItemReplaced"])).data.qty is None
    inv = parse(message("InventoryAdjusted", MINIMAL["InventoryAdjusted"])).data
    assert (inv.delta, inv.set_to, inv.recalculate) == (-3, None, False)
    assert parse(message("WarehouseUpserted", MINIMAL["WarehouseUpserted"])).data.name is None
    product = parse(message("ProductUpserted", MINIMAL["ProductUpserted"])).data
    assert (product.replacement_sku, product.name) == (None, None)
    po_line = parse(message("PurchaseOrderUpdated", MINIMAL["PurchaseOrderUpdated"])).data.lines[0]
    assert (po_line.qty_received, po_line.estimated_delivery_date) == (0, None)
    container = parse(message("ContainerUpdated", MINIMAL["ContainerUpdated"])).data
    assert (container.estimated_arrival_date, container.lines) == (None, [])
    recalc = parse(message("RecalculateBackorders", {})).data
    assert (recalc.order_ids, recalc.skus) == ([], [])


def test_events_md_envelope_example_verbatim() -> None:
    raw = """{"specversion": "1.0", "id": "e-42", "source": "/oms", "type": "OrderCreated",
 "time": "2025-04-30T15:19:00Z", "subject": "5145827", "datacontenttype": "application/json",
 "data": {"order_id": 5145827, "order_date": "2025-04-30T15:19:00Z",
          "lines": [{"line_id": 1, "sku": "SKU-1", "qty": 1}]}}"""
    event = parse_event(raw)
    assert (event.id, event.source, event.subject) == ("e-42", "/oms", "5145827")
    assert event.data.order_id == "5145827"


def test_unknown_fields_ignored_at_every_level() -> None:
    data = copy.deepcopy(FULL["OrderCreated"])
    data["future_field"] = {"x": 1}
    data["lines"][0]["warehouse_hint"] = "WH-9"
    data["customer"]["loyalty"] = "gold"
    data["customer"]["shipping_address"]["geo"] = [1, 2]
    msg = message("OrderCreated", data, traceparent="00-abc", partitionkey="5145827")
    event = parse(msg)
    assert "traceparent" not in event.model_dump()
    assert "future_field" not in event.data.model_dump()
    assert event.data.lines[0].sku == "SKU-1"
    assert event.model_dump(mode="json")["data"] == FULL["OrderCreated"]


@pytest.mark.parametrize("event_type", TYPES)
def test_unknown_fields_ignored_for_every_type(event_type: str) -> None:
    event = parse(message(event_type, {**FULL[event_type], "x_extra": 1}, x_envelope=2))
    assert event.model_dump(mode="json")["data"] == FULL[event_type]


@pytest.mark.parametrize(("raw_time", "expected"), [
    ("2025-04-30T15:19:00", datetime(2025, 4, 30, 15, 19, tzinfo=timezone.utc)),
    ("2025-04-30T15:19:00Z", datetime(2025, 4, 30, 15, 19, tzinfo=timezone.utc)),
    ("2025-04-30T17:19:00+02:00", datetime(2025, 4, 30, 15, 19, tzinfo=timezone.utc)),
    ("2025-04-30T10:19:00.5-05:00", datetime(2025, 4, 30, 15, 19, 0, 500000, tzinfo=timezone.utc)),
    ("2025-04-30 15:19:00", datetime(2025, 4, 30, 15, 19, tzinfo=timezone.utc)),
])
def test_timestamps_normalised_to_utc(raw_time: str, expected: datetime) -> None:
    data = {**MINIMAL["OrderCreated"], "order_date": raw_time, "payment_date": raw_time}
    event = parse(message("OrderCreated", data, time=raw_time))
    for value in (event.time, event.data.order_date, event.data.payment_date):
        assert value == expected
        assert value.tzinfo is timezone.utc


def test_naive_time_taken_as_utc() -> None:
    event = parse(message("MarkBackorder", MINIMAL["MarkBackorder"], time="2025-04-30T15:19:00"))
    assert event.time == datetime(2025, 4, 30, 15, 19, tzinfo=timezone.utc)
    assert event.model_dump(mode="json")["time"] == "2025-04-30T15:19:00Z"


@pytest.mark.parametrize(("event_type", "data", "get"), [
    ("PurchaseOrderUpdated",
     {"po_id": "PO-1", "lines": [{"sku": "A", "qty_ordered": 1,
                                  "estimated_delivery_date": "2025-05-01"}]},
     lambda d: d.lines[0].estimated_delivery_date),
    ("ContainerUpdated",
     {"container_id": "C-1", "estimated_arrival_date": "2025-05-01", "lines": []},
     lambda d: d.estimated_arrival_date),
])
def test_plain_date_accepted_as_midnight_utc(event_type: str, data: Any, get: Any) -> None:
    assert get(parse(message(event_type, data)).data) == datetime(2025, 5, 1, tzinfo=timezone.utc)


def test_integer_ids_accepted_as_strings() -> None:
    data = {"order_id": 5145827, "order_date": T0, "ship_from_warehouse_id": 3, "company_id": 1,
            "lines": [{"line_id": 77, "sku": "SKU-1", "qty": 1}]}
    order = parse(message("OrderCreated", data)).data
    assert (order.order_id, order.ship_from_warehouse_id, order.company_id) == ("5145827", "3", "1")
    assert order.lines[0].line_id == "77"
    marks = parse(message("MarkBackorder", {"order_ids": [1, "2"]})).data
    assert marks.order_ids == ["1", "2"]
    inv = parse(message("InventoryAdjusted", {"sku": "A", "warehouse_id": 12, "set_to": 0})).data
    assert inv.warehouse_id == "12"


def test_sellercloud_codes_in_a_message() -> None:
    data = {**MINIMAL["OrderCreated"], "order_status": 200, "payment_status": "80"}
    order = parse(message("OrderCreated", data)).data
    assert (order.order_status, order.payment_status) == (OrderStatus.OnHold, PaymentStatus.Charged)
    assert order.model_dump(mode="json")["order_status"] == "OnHold"


def test_inventory_may_go_negative() -> None:
    inv = parse(message("InventoryAdjusted", {"sku": "A", "warehouse_id": "W", "set_to": -5})).data
    assert inv.set_to == -5
    inv = parse(message("InventoryAdjusted", {"sku": "A", "warehouse_id": "W", "delta": 0,
                                              "set_to": None})).data
    assert (inv.delta, inv.set_to) == (0, None)


class TestOrderStatusChangedFieldsSet:
    def test_only_present_fields_are_set(self) -> None:
        data = parse(message("OrderStatusChanged", {"order_id": "1", "rush": True})).data
        assert data.model_fields_set == {"order_id", "rush"}
        assert data.rush is True

    def test_explicit_null_is_set_and_distinct_from_absent(self) -> None:
        data = parse(message("OrderStatusChanged", {"order_id": "1", "payment_date": None,
                                                    "ship_from_warehouse_id": None})).data
        assert data.model_fields_set == {"order_id", "payment_date", "ship_from_warehouse_id"}
        assert data.payment_date is None and data.ship_from_warehouse_id is None
        assert "order_status" not in data.model_fields_set

    def test_all_fields_set(self) -> None:
        data = parse(message("OrderStatusChanged", FULL["OrderStatusChanged"])).data
        assert data.model_fields_set == set(FULL["OrderStatusChanged"])
        assert data.payment_date == datetime(2025, 5, 1, 8, tzinfo=timezone.utc)


# --- rejections of data fields ---------------------------------------------------------------

def _required_data_fields() -> list[tuple[str, str]]:
    out = []
    for event_type in TYPES:
        data_model = INPUT_EVENT_TYPES[event_type].model_fields["data"].annotation
        out += [(event_type, name) for name, field in data_model.model_fields.items()
                if field.is_required()]
    return out


@pytest.mark.parametrize(("event_type", "field"), _required_data_fields())
def test_missing_required_data_field_rejected(event_type: str, field: str) -> None:
    data = {k: v for k, v in FULL[event_type].items() if k != field}
    assert reason(message(event_type, data)) == f"{event_type}: data.{field}: Field required"


# (event type, setter of the quantity inside a copy of FULL data, reported path, minimum)
QTY_FIELDS = [
    ("OrderCreated", lambda d, v: d["lines"][1].update(qty=v), "data.lines[1].qty", 1),
    ("OrderSplit", lambda d, v: d["lines"][0].update(qty=v), "data.lines[0].qty", 1),
    ("ItemAdded", lambda d, v: d["line"].update(qty=v), "data.line.qty", 1),
    ("ItemReplaced", lambda d, v: d.update(qty=v), "data.qty", 1),
    ("POReceived", lambda d, v: d["lines"][0].update(qty=v), "data.lines[0].qty", 1),
    ("PurchaseOrderUpdated", lambda d, v: d["lines"][0].update(qty_ordered=v),
     "data.lines[0].qty_ordered", 1),
    ("PurchaseOrderUpdated", lambda d, v: d["lines"][0].update(qty_received=v),
     "data.lines[0].qty_received", 0),
    ("ContainerUpdated", lambda d, v: d["lines"][1].update(qty=v), "data.lines[1].qty", 0),
    ("ReallocateBackorder", lambda d, v: d["lines"][0].update(backorder_qty=v),
     "data.lines[0].backorder_qty", 0),
]
QTY_IDS = [f"{t}:{p}" for t, _, p, _ in QTY_FIELDS]


def _with_qty(event_type: str, setter: Any, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(FULL[event_type])
    setter(data, value)
    return message(event_type, data)


@pytest.mark.parametrize(("event_type", "setter", "path", "minimum"), QTY_FIELDS, ids=QTY_IDS)
def test_qty_below_minimum_rejected(event_type: str, setter: Any, path: str, minimum: int) -> None:
    for value in (minimum - 1, minimum - 7):
        text = reason(_with_qty(event_type, setter, value))
        bound = "greater than 0" if minimum == 1 else "greater than or equal to 0"
        assert text == f"{event_type}: {path}: Input should be {bound}"
    assert parse(_with_qty(event_type, setter, minimum))


@pytest.mark.parametrize(("event_type", "setter", "path", "minimum"), QTY_FIELDS, ids=QTY_IDS)
@pytest.mark.parametrize("value", [1.5, 2.0, "abc", "2", True, [1]])
def test_non_integer_qty_rejected(
    event_type: str, setter: Any, path: str, minimum: int, value: Any
) -> None:
    text = reason(_with_qty(event_type, setter, value))
    assert text == f"{event_type}: {path}: Input should be a valid integer"


@pytest.mark.parametrize("field", ["delta", "set_to"])
@pytest.mark.parametrize("value", [1.5, "3", True])
def test_inventory_numbers_must_be_integers(field: str, value: Any) -> None:
    text = reason(message("InventoryAdjusted", {"sku": "A", "warehouse_id": "W", field: value}))
    assert text == f"InventoryAdjusted: data.{field}: Input should be a valid integer"


@pytest.mark.parametrize("data", [
    {"delta": 1, "set_to": 2},
    {},
    {"delta": None, "set_to": None},
    {"delta": None},
])
def test_inventory_adjusted_needs_exactly_one_of_delta_and_set_to(data: dict[str, Any]) -> None:
    text = reason(message("InventoryAdjusted", {"sku": "A", "warehouse_id": "W", **data}))
    assert text == "InventoryAdjusted: data: exactly one of delta / set_to is required"


@pytest.mark.parametrize(("event_type", "data", "expected"), [
    ("OrderCreated", {**MINIMAL["OrderCreated"], "lines": [
        {"line_id": "1", "sku": "A", "qty": 1}, {"line_id": "1", "sku": "B", "qty": 2}]},
     "OrderCreated: data.lines: duplicate line_id '1'"),
    ("OrderCreated", {**MINIMAL["OrderCreated"], "lines": [
        {"line_id": 7, "sku": "A", "qty": 1}, {"line_id": "7", "sku": "B", "qty": 2}]},
     "OrderCreated: data.lines: duplicate line_id '7'"),
    ("OrderSplit", {"order_id": "1", "new_order_id": "2", "lines": [
        {"line_id": "1", "qty": 1, "new_line_id": "8"},
        {"line_id": "1", "qty": 1, "new_line_id": "9"}]},
     "OrderSplit: data.lines: duplicate line_id '1'"),
    ("OrderSplit", {"order_id": "1", "new_order_id": "2", "lines": [
        {"line_id": "1", "qty": 1, "new_line_id": "9"},
        {"line_id": "2", "qty": 1, "new_line_id": "9"}]},
     "OrderSplit: data.lines: duplicate new_line_id '9'"),
    ("ReallocateBackorder", {"order_id": "1", "lines": [
        {"line_id": "1", "backorder_qty": 1}, {"line_id": "1", "backorder_qty": 0}]},
     "ReallocateBackorder: data.lines: duplicate line_id '1'"),
])
def test_duplicate_line_ids_rejected(event_type: str, data: Any, expected: str) -> None:
    assert reason(message(event_type, data)) == expected


@pytest.mark.parametrize(("event_type", "data", "expected"), [
    ("OrderSplit", {"order_id": "1", "new_order_id": 1,
                    "lines": [{"line_id": "1", "qty": 1, "new_line_id": "2"}]},
     "OrderSplit: data: new_order_id must differ from order_id"),
    ("ProductUpserted", {"sku": "A", "replacement_sku": "A"},
     "ProductUpserted: data: replacement_sku must differ from sku"),
    ("OrderStatusChanged", {"order_id": "1"},
     "OrderStatusChanged: data: at least one of order_status, payment_status, payment_date, "
     "rush, picked, ship_from_warehouse_id must be present"),
    ("OrderStatusChanged", {"order_id": "1", "order_status": None},
     "OrderStatusChanged: data.order_status: order status may not be null"),
    ("OrderStatusChanged", {"order_id": "1", "rush": None},
     "OrderStatusChanged: data.rush: Input should be a valid boolean"),
    ("OrderCreated", {**MINIMAL["OrderCreated"], "lines": []},
     "OrderCreated: data.lines: List should have at least 1 item after validation, not 0"),
    ("POReceived", {"po_id": "P", "warehouse_id": "W", "lines": []},
     "POReceived: data.lines: List should have at least 1 item after validation, not 0"),
    ("PurchaseOrderUpdated", {"po_id": "P", "lines": []},
     "PurchaseOrderUpdated: data.lines: List should have at least 1 item after validation, not 0"),
    ("OrderSplit", {"order_id": "1", "new_order_id": "2", "lines": []},
     "OrderSplit: data.lines: List should have at least 1 item after validation, not 0"),
    ("ReallocateBackorder", {"order_id": "1", "lines": []},
     "ReallocateBackorder: data.lines: List should have at least 1 item after validation, not 0"),
    ("MarkBackorder", {"order_ids": []},
     "MarkBackorder: data.order_ids: List should have at least 1 item after validation, not 0"),
    ("MarkNotBackorder", {"order_ids": []},
     "MarkNotBackorder: data.order_ids: List should have at least 1 item after validation, not 0"),
])
def test_cross_field_and_emptiness_rules(event_type: str, data: Any, expected: str) -> None:
    assert reason(message(event_type, data)) == expected


@pytest.mark.parametrize(("event_type", "data", "expected"), [
    ("OrderCreated", {**MINIMAL["OrderCreated"], "order_id": True},
     "data.order_id: Input should be a valid string"),
    ("OrderCreated", {**MINIMAL["OrderCreated"], "order_id": ""},
     "data.order_id: String should have at least 1 character"),
    ("OrderCreated", {**MINIMAL["OrderCreated"], "order_id": 1.5},
     "data.order_id: Input should be a valid string"),
    ("OrderCreated", {**MINIMAL["OrderCreated"], "order_id": None},
     "data.order_id: Input should be a valid string"),
    ("OrderCreated", {**MINIMAL["OrderCreated"], "lines": {"line_id": "1"}},
     "data.lines: Input should be a valid array"),
    ("OrderCreated", {**MINIMAL["OrderCreated"], "lines": [{"line_id": "1", "sku": 5, "qty": 1}]},
     "data.lines[0].sku: Input should be a valid string"),
    ("OrderCreated", {**MINIMAL["OrderCreated"], "lines": [{"line_id": "1", "sku": "", "qty": 1}]},
     "data.lines[0].sku: String should have at least 1 character"),
    ("OrderCreated", {**MINIMAL["OrderCreated"], "lines": [{"line_id": "1", "qty": 1}]},
     "data.lines[0].sku: Field required"),
    ("OrderCreated", {**MINIMAL["OrderCreated"], "customer": "Ann"},
     "data.customer: Input should be an object"),
    ("OrderCreated", {**MINIMAL["OrderCreated"], "rush": "maybe"},
     "data.rush: Input should be a valid boolean"),
    ("OrderCreated", {**MINIMAL["OrderCreated"], "order_date": "yesterday"},
     "data.order_date: Input should be an RFC 3339 timestamp"),
    ("OrderCreated", {**MINIMAL["OrderCreated"], "order_date": 1714490340},
     "data.order_date: Input should be an RFC 3339 timestamp"),
    ("OrderCreated", {**MINIMAL["OrderCreated"], "order_date": "2025-04-30"},
     "data.order_date: Input should be an RFC 3339 timestamp"),
    ("OrderCreated", {**MINIMAL["OrderCreated"], "order_date": "2025-13-30T00:00:00Z"},
     "data.order_date: Input should be a valid datetime"),
    ("OrderCreated", {**MINIMAL["OrderCreated"], "lines": [
        {"line_id": "1", "sku": "A", "qty": 1, "unit_price": "cheap"}]},
     "data.lines[0].unit_price"),
    ("WarehouseUpserted", {"warehouse_id": "W", "type": "Garage"},
     "data.type: Input should be 'Sellable', 'Dropship', 'Unsellable', 'FBA', 'Interim' or "
     "'Untested'"),
    ("ProductUpserted", {"sku": "A", "replacement_sku": ""},
     "data.replacement_sku: String should have at least 1 character"),
    ("PurchaseOrderUpdated", {"po_id": "P", "lines": [
        {"sku": "A", "qty_ordered": 1, "estimated_delivery_date": "soon"}]},
     "data.lines[0].estimated_delivery_date: Input should be an RFC 3339 timestamp"),
    ("RecalculateBackorders", {"order_ids": "5145827"},
     "data.order_ids: Input should be a valid array"),
    ("RecalculateBackorders", {"skus": [""]},
     "data.skus[0]: String should have at least 1 character"),
    ("SettingsChanged", {"settings": {"max_days_too_be_back": 3}},
     "data.settings.max_days_too_be_back: Extra inputs are not permitted"),
])
def test_wrong_values_rejected_naming_the_field(event_type: str, data: Any, expected: str) -> None:
    text = reason(message(event_type, data))
    assert text.startswith(f"{event_type}: ")
    assert expected in text


def test_several_errors_joined_on_one_line() -> None:
    data = {**MINIMAL["OrderCreated"], "lines": [
        {"line_id": "1", "sku": "A", "qty": 0}, {"line_id": "2", "sku": "B", "qty": 1.5}]}
    text = reason(message("OrderCreated", data))
    assert text == ("OrderCreated: data.lines[0].qty: Input should be greater than 0; "
                    "data.lines[1].qty: Input should be a valid integer")
    assert "\n" not in text


def test_error_list_is_capped() -> None:
    data = {**MINIMAL["OrderCreated"],
            "lines": [{"line_id": str(i), "sku": "A", "qty": 0} for i in range(9)]}
    text = reason(message("OrderCreated", data))
    assert text.count("greater than 0") == 5
    assert text.endswith("; and 4 more errors")
