"""What handling one input event produces: plain values, turned into CloudEvents by
`recalculator.publishing`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

APPLIED, DUPLICATE, REJECTED = "applied", "duplicate", "rejected"
# A manual action naming an order not known yet, kept waiting for it (docs/behaviour.md,
# "Manual actions waiting for their orders"): decided later, as a `Settled`.
HELD = "held"


# Value objects built several times per event: named tuples are immutable and several times
# cheaper to construct than frozen dataclasses.
class LineChange(NamedTuple):
    line_id: str
    sku: str
    qty: int
    backorder_qty: int
    previous_backorder_qty: int
    expected_date: int | None = None  # µs (docs/behaviour.md, "Expected date per line")
    previous_expected_date: int | None = None


class OrderBackorderChange(NamedTuple):
    order_id: str
    company_id: str
    status: str
    previous_status: str
    reason: str  # "recalculation" or "manual"
    cause_id: str
    lines: tuple[LineChange, ...]


class ProductBackorderChange(NamedTuple):
    sku: str
    backorder_qty: int
    previous_backorder_qty: int


class SkuPositionChange(NamedTuple):
    sku: str
    available_qty: int
    backorder_qty: int
    previous_available_qty: int
    previous_backorder_qty: int


class PartialLine(NamedTuple):
    line_id: str
    sku: str
    qty: int
    backorder_qty: int
    expected_date: int | None = None


class OrderPartial(NamedTuple):
    """A SKU shard's lines of one order it touched (docs/sharding.md); the assembler merges
    the partials of all shards into the order's BackorderChanged."""

    order_id: str
    company_id: str
    lines: tuple[PartialLine, ...]
    evicted: bool = False  # the shard forgot the order (a closed order past its retention)
    publish_dates: bool = False  # publish_expected_date_changes, as the shard's settings say


@dataclass(slots=True)
class Outcome:
    status: str
    reason: str | None = None
    orders: list[OrderBackorderChange] = field(default_factory=list)
    products: list[ProductBackorderChange] = field(default_factory=list)
    positions: list[SkuPositionChange] = field(default_factory=list)
    partials: list[OrderPartial] = field(default_factory=list)
    handoff: object = None  # a shard operation's hand-over (sharding.LineHandoff, SkuExport)
    evicted: list[str] = field(default_factory=list)  # closed orders forgotten after it
    # Waiting manual actions decided after this event: let go (expired), then applied or
    # refused when an order this event created was the last one they waited for.
    settled: list[Settled] = field(default_factory=list)


@dataclass(slots=True)
class Settled:
    """A waiting manual action decided after a later event: applied (`outcome` APPLIED, with
    what it published, reason `manual` and its own id as cause) or refused (`outcome`
    REJECTED, with the reason; the caller dead-letters it from `ref`)."""

    event_id: str
    event_type: str
    time: datetime  # the action's own time: the time of what it publishes
    ref: object  # what the caller passed to `Engine.handle` with the action
    outcome: Outcome


class Rejected(Exception):
    """The event is refused as a whole; nothing was changed (rules §10)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownOrder(Rejected):
    """Refused because it names an order the engine does not know (yet, or any more)."""

    def __init__(self, order_id: str) -> None:
        super().__init__(f"unknown order {order_id!r}")
        self.order_id = order_id
