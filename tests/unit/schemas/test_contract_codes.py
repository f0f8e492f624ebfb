"""Order and payment statuses: our names, Sellercloud's names and its integer codes."""

from __future__ import annotations

from typing import Any

import pytest
from backorder_events import (
    BackorderStatus,
    OrderStatus,
    OrderStatusField,
    PaymentStatus,
    PaymentStatusField,
    WarehouseType,
)
from pydantic import BaseModel, ValidationError


class Statuses(BaseModel):
    order_status: OrderStatusField = OrderStatus.InProcess
    payment_status: PaymentStatusField = PaymentStatus.Unpaid


# backorder-rules.md §2: (code, Sellercloud name, our status)
ORDER_CODES = [
    (1, "ShoppingCart", OrderStatus.ShoppingCart),
    (2, "InProcess", OrderStatus.InProcess),
    (3, "Completed", OrderStatus.Completed),
    (100, "ProblemOrder", OrderStatus.ProblemOrder),
    (200, "OnHold", OrderStatus.OnHold),
    (300, "Quote", OrderStatus.Quote),
    (999, "Void", OrderStatus.Void),
    (-1, "Canceled", OrderStatus.Cancelled),
]
PAYMENT_CODES = [
    (10, "NoPayment", PaymentStatus.Unpaid),
    (20, "Authorized", PaymentStatus.Authorized),
    (30, "Charged", PaymentStatus.Charged),
    (40, "Uncleared", PaymentStatus.Uncleared),
    (50, "PartiallyRefund", PaymentStatus.PartiallyRefunded),
    (60, "FullRefund", PaymentStatus.Refunded),
    (70, "PartialPayment", PaymentStatus.PartiallyPaid),
    (80, "eBayPaid", PaymentStatus.Charged),
    (99, "PaymentError", PaymentStatus.PaymentError),
]


def test_enum_values() -> None:
    assert [s.value for s in OrderStatus] == [
        "InProcess", "OnHold", "Quote", "Completed", "Cancelled", "Void", "ShoppingCart",
        "ProblemOrder"]
    assert [s.value for s in PaymentStatus] == [
        "Unpaid", "PartiallyPaid", "Authorized", "Charged", "Uncleared", "PartiallyRefunded",
        "Refunded", "PaymentError"]
    assert [s.value for s in WarehouseType] == [
        "Sellable", "Dropship", "Unsellable", "FBA", "Interim", "Untested"]
    assert [(s.name, s.value) for s in BackorderStatus] == [
        ("NONE", "None"), ("PARTIAL", "Partial"), ("FULL", "Full")]


@pytest.mark.parametrize(("code", "name", "status"), ORDER_CODES)
def test_order_status_codes_and_names(code: int, name: str, status: OrderStatus) -> None:
    for value in (code, str(code), name, status.value, status):
        assert Statuses.model_validate({"order_status": value}).order_status is status
        json_value = f'"{value}"' if isinstance(value, str) else str(value)
        if isinstance(value, OrderStatus):
            json_value = f'"{value.value}"'
        parsed = Statuses.model_validate_json(f'{{"order_status": {json_value}}}')
        assert parsed.order_status is status


@pytest.mark.parametrize(("code", "name", "status"), PAYMENT_CODES)
def test_payment_status_codes_and_names(code: int, name: str, status: PaymentStatus) -> None:
    for value in (code, str(code), name, status.value):
        assert Statuses.model_validate({"payment_status": value}).payment_status is status
        json_value = f'"{value}"' if isinstance(value, str) else str(value)
        parsed = Statuses.model_validate_json(f'{{"payment_status": {json_value}}}')
        assert parsed.payment_status is status


@pytest.mark.parametrize("status", list(OrderStatus))
def test_every_order_status_name_accepted(status: OrderStatus) -> None:
    assert Statuses.model_validate({"order_status": status.value}).order_status is status


@pytest.mark.parametrize("status", list(PaymentStatus))
def test_every_payment_status_name_accepted(status: PaymentStatus) -> None:
    assert Statuses.model_validate({"payment_status": status.value}).payment_status is status


def _error(field: str, value: Any) -> str:
    with pytest.raises(ValidationError) as exc:
        Statuses.model_validate({field: value})
    return exc.value.errors()[0]["msg"]


@pytest.mark.parametrize("value", ["Shipped", "inprocess", 4, "4", True, 2.0, "", [2]])
def test_unknown_order_status_rejected_listing_accepted_values(value: Any) -> None:
    msg = _error("order_status", value)
    assert msg.startswith(f"unknown order status {value!r}; expected one of InProcess, OnHold")
    assert "Canceled" in msg and "999" in msg and "-1" in msg


@pytest.mark.parametrize("value", ["Paid", 0, "15", False, 30.0])
def test_unknown_payment_status_rejected_listing_accepted_values(value: Any) -> None:
    msg = _error("payment_status", value)
    assert msg.startswith(f"unknown payment status {value!r}; expected one of Unpaid")
    assert "eBayPaid" in msg and "80" in msg


def test_statuses_serialise_as_our_names() -> None:
    dumped = Statuses.model_validate({"order_status": -1, "payment_status": 80}).model_dump(
        mode="json")
    assert dumped == {"order_status": "Cancelled", "payment_status": "Charged"}


def test_json_schema_lists_names_and_codes() -> None:
    props = Statuses.model_json_schema()["properties"]
    order_strings, order_ints = props["order_status"]["anyOf"]
    assert order_strings["type"] == "string"
    assert set(order_strings["enum"]) == {s.value for s in OrderStatus} | {"Canceled"}
    assert order_ints == {"type": "integer", "enum": [c for c, _, _ in ORDER_CODES]}
    pay_strings, pay_ints = props["payment_status"]["anyOf"]
    assert set(pay_strings["enum"]) == {s.value for s in PaymentStatus} | {
        n for _, n, _ in PAYMENT_CODES}
    assert pay_ints == {"type": "integer", "enum": [c for c, _, _ in PAYMENT_CODES]}
