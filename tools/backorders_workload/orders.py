"""The generator's own view of an order: its status, payment and lines, so that every
event it writes names an order and line that exist."""

from __future__ import annotations

from typing import Any

ORDER_STATUS_CODES = {1: "ShoppingCart", 2: "InProcess", 3: "Completed", 100: "ProblemOrder",
                       200: "OnHold", 300: "Quote", 999: "Void", -1: "Cancelled"}


PAYMENT_CODES = {10: "Unpaid", 20: "Authorized", 30: "Charged", 40: "Uncleared",
                  50: "PartiallyRefunded", 60: "Refunded", 70: "PartiallyPaid", 80: "Charged",
                  99: "PaymentError"}


CALCULATED_PAYMENTS = frozenset({"Charged", "Unpaid", "Uncleared", "PartiallyPaid"})


CLOSED = frozenset({"Completed", "Cancelled", "Void"})


def _order_status(value: Any) -> str:
    return ORDER_STATUS_CODES.get(value, value) if isinstance(value, int) else value


def _payment_status(value: Any) -> str:
    return PAYMENT_CODES.get(value, value) if isinstance(value, int) else value


class Order:
    __slots__ = ("id", "status", "payment", "picked", "lines", "next_line", "splits", "short")

    def __init__(self, order_id: str, status: Any, payment: Any, lines: dict[str, list]) -> None:
        self.id = order_id
        self.status = _order_status(status)
        self.payment = _payment_status(payment)
        self.picked = False
        self.lines = lines  # line_id -> [sku, qty], insertion ordered
        self.next_line = len(lines) + 1
        self.splits = 0
        self.short = False  # the generator's rough guess that it is backordered

    @property
    def open(self) -> bool:
        return self.status not in CLOSED

    @property
    def calculated(self) -> bool:
        return self.status == "InProcess" and self.payment in CALCULATED_PAYMENTS
