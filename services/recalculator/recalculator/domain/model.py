"""Orders and lines as the allocation core keeps them.

Times are integers (microseconds since the Unix epoch, UTC): they come from events, compare
fast and make the priority keys plain tuples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from math import floor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .pool import Pool

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY_US = 86_400_000_000

# Order-level backorder statuses (rules §7).
NONE, PARTIAL, FULL = "None", "Partial", "Full"

# Order statuses an order never leaves in Sellercloud's workflow: shipped, cancelled, voided.
# Their lines are never calculated (rules §4); after `closed_order_retention` the order is
# forgotten (docs/behaviour.md, Retention).
CLOSED = frozenset({"Completed", "Cancelled", "Void"})


def to_us(moment: datetime) -> int:
    """Aware datetime → µs since the epoch (floor of the float is exact to the second)."""
    return floor(moment.timestamp()) * 1_000_000 + moment.microsecond


def from_us(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


@dataclass(eq=False, slots=True)
class Line:
    """One order line. Identity matters (lines sit in sets and pools), so no value equality."""

    order: Order
    line_id: str
    sku: str
    qty: int
    name: str | None = None
    unit_price: float | Decimal | None = None  # as given; only the notifier shows it
    # What downstream systems were last told, and whether a manual action set it.
    published: int = 0
    manual: bool = False
    # Allocation state, owned by the pool that holds the line (None: not calculated).
    pool: Pool | None = None
    key: tuple | None = None
    alloc: int = 0
    frozen: bool = False
    live: bool = True  # False once the line has left its order (moved whole by a split)
    # A line of a closed order whose published backorder has not yet been taken to 0 by a
    # recalculation of its SKU since the order closed (or since a manual action set it).
    owing: bool = False
    # Expected dates (docs/behaviour.md, "Expected date per line"): (sku, key, units) under
    # which the line waits in its SKU's schedule (None: not waiting), and the date (µs) last
    # published for it.
    waiting: tuple | None = None
    published_date: int | None = None


@dataclass(eq=False, slots=True)
class Order:
    order_id: str
    company_id: str
    order_date: int
    order_status: str
    payment_status: str
    payment_date: int | None = None
    rush: bool = False
    picked: bool = False
    ship_from_warehouse_id: str | None = None
    channel: str | None = None
    customer: bytes | None = None  # the customer as compact JSON: only the notifier reads it
    lines: dict[str, Line] = field(default_factory=dict)
    published_status: str = NONE
    closed_at: int | None = None  # time of the event that closed it (status in CLOSED)
    owing: int = 0  # how many of its lines are owing (see Line.owing)


def backorder_status(order: Order) -> str:
    """Rules §7, over the published backorder quantities."""
    backordered = total = 0
    for line in order.lines.values():
        backordered += line.published
        total += line.qty
    if backordered == 0:
        return NONE
    return FULL if backordered == total else PARTIAL
