"""Status vocabularies, including Sellercloud's own names and integer codes."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError


class OrderStatus(str, Enum):
    InProcess = "InProcess"
    OnHold = "OnHold"
    Quote = "Quote"
    Completed = "Completed"
    Cancelled = "Cancelled"
    Void = "Void"
    ShoppingCart = "ShoppingCart"
    ProblemOrder = "ProblemOrder"


class PaymentStatus(str, Enum):
    Unpaid = "Unpaid"
    PartiallyPaid = "PartiallyPaid"
    Authorized = "Authorized"
    Charged = "Charged"
    Uncleared = "Uncleared"
    PartiallyRefunded = "PartiallyRefunded"
    Refunded = "Refunded"
    PaymentError = "PaymentError"


class WarehouseType(str, Enum):
    Sellable = "Sellable"
    Dropship = "Dropship"
    Unsellable = "Unsellable"
    FBA = "FBA"
    Interim = "Interim"
    Untested = "Untested"


class BackorderStatus(str, Enum):
    NONE = "None"
    PARTIAL = "Partial"
    FULL = "Full"


# Sellercloud code -> (Sellercloud name, our status); backorder-rules.md §2.
SELLERCLOUD_ORDER_STATUS: dict[int, tuple[str, OrderStatus]] = {
    1: ("ShoppingCart", OrderStatus.ShoppingCart),
    2: ("InProcess", OrderStatus.InProcess),
    3: ("Completed", OrderStatus.Completed),
    100: ("ProblemOrder", OrderStatus.ProblemOrder),
    200: ("OnHold", OrderStatus.OnHold),
    300: ("Quote", OrderStatus.Quote),
    999: ("Void", OrderStatus.Void),
    -1: ("Canceled", OrderStatus.Cancelled),
}

SELLERCLOUD_PAYMENT_STATUS: dict[int, tuple[str, PaymentStatus]] = {
    10: ("NoPayment", PaymentStatus.Unpaid),
    20: ("Authorized", PaymentStatus.Authorized),
    30: ("Charged", PaymentStatus.Charged),
    40: ("Uncleared", PaymentStatus.Uncleared),
    50: ("PartiallyRefund", PaymentStatus.PartiallyRefunded),
    60: ("FullRefund", PaymentStatus.Refunded),
    70: ("PartialPayment", PaymentStatus.PartiallyPaid),
    80: ("eBayPaid", PaymentStatus.Charged),
    99: ("PaymentError", PaymentStatus.PaymentError),
}


class _StatusParser:
    """Accepts our names, Sellercloud's names, its integer codes and numeric strings."""

    def __init__(self, enum: type[Enum], codes: dict[int, tuple[str, Any]], what: str):
        self.enum = enum
        self.what = what
        self.lookup: dict[Any, Any] = {m.value: m for m in enum}
        for code, (sc_name, member) in codes.items():
            self.lookup.setdefault(sc_name, member)
            self.lookup[code] = member
            self.lookup[str(code)] = member
        self.names = list(dict.fromkeys([m.value for m in enum] + [n for n, _ in codes.values()]))
        self.codes = list(codes)
        self.expected = (
            f"{', '.join(self.names)} or a Sellercloud code ({', '.join(map(str, codes))})"
        )

    def __call__(self, value: Any) -> Any:
        if isinstance(value, self.enum):
            return value
        # only str and int: a bool or float would hash-match an int code (True == 1, 2.0 == 2)
        if type(value) is str or type(value) is int:
            member = self.lookup.get(value)
            if member is not None:
                return member
        if value is None:
            raise PydanticCustomError(f"{self.what}_status", f"{self.what} status may not be null")
        raise PydanticCustomError(
            f"{self.what}_status",
            f"unknown {self.what} status {{value}}; expected one of {self.expected}",
            {"value": repr(value)[:60]},
        )

    def json_schema(self) -> WithJsonSchema:
        return WithJsonSchema({
            "anyOf": [
                {"type": "string", "enum": self.names},
                {"type": "integer", "enum": self.codes},
            ],
            "description": f"{self.what.capitalize()} status name, or Sellercloud's name or code",
        })


_order_status = _StatusParser(OrderStatus, SELLERCLOUD_ORDER_STATUS, "order")
_payment_status = _StatusParser(PaymentStatus, SELLERCLOUD_PAYMENT_STATUS, "payment")

OrderStatusField = Annotated[
    OrderStatus, BeforeValidator(_order_status), _order_status.json_schema()
]
PaymentStatusField = Annotated[
    PaymentStatus, BeforeValidator(_payment_status), _payment_status.json_schema()
]
