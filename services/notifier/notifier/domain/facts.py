"""What the notifier knows about an order, from the order events it consumed itself.

`BackorderChanged` carries no personal data; the customer (email, names, shipping address),
the order date and the line names come from `OrderCreated`, `OrderSplit` (the new order
takes the original's customer), `ItemAdded` and `ItemReplaced`. See docs/notifier.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# A chain of splits of splits is followed this far to find the customer.
MAX_PARENT_HOPS = 32


@dataclass(slots=True)
class LineFacts:
    sku: str
    name: str | None = None


@dataclass(slots=True)
class OrderFacts:
    """One order as the notifier sees it. `known` is False for a row that exists only
    because a `BackorderChanged` or an `ItemAdded` came before the order's own data."""

    order_id: str
    known: bool = False
    company_id: str | None = None
    customer: dict[str, Any] | None = None
    order_date: str | None = None  # RFC 3339, as the order event gave it
    parent_order_id: str | None = None  # the order this one was split from
    lines: dict[str, LineFacts] = field(default_factory=dict)
    last_change: dict[str, Any] | None = None  # the last BackorderChanged seen (CloudEvent)
    closed_at: int | None = None  # µs business time it was completed, cancelled or voided
    emailed_day: str | None = None  # the expected day (YYYY-MM-DD) its last email gave, if known


@dataclass(frozen=True, slots=True)
class Resolved:
    """An order whose customer data has arrived (directly or through the order it was split
    from)."""

    order_id: str
    company_id: str | None
    customer: dict[str, Any] | None
    order_date: str | None
    line_names: dict[str, str | None]


def resolve(order_id: str, facts: dict[str, OrderFacts]) -> Resolved | None:
    """The order's customer data, or None while it has not arrived. A split-off order whose
    original is not known yet resolves once the original's data arrives."""
    order = facts.get(order_id)
    if order is None:
        return None
    names = {line_id: line.name for line_id, line in order.lines.items()}
    current = order
    for _ in range(MAX_PARENT_HOPS):
        if current.known:
            return Resolved(
                order_id=order_id,
                company_id=order.company_id or current.company_id,
                customer=current.customer,
                order_date=order.order_date or current.order_date,
                line_names=names,
            )
        if current.parent_order_id is None:
            return None
        parent = facts.get(current.parent_order_id)
        if parent is None:
            return None
        current = parent
    return None


def ancestors(order_id: str, facts: dict[str, OrderFacts]) -> list[str]:
    """Ids of the orders a split-off order came from, nearest first (as far as known)."""
    chain: list[str] = []
    current = facts.get(order_id)
    while current is not None and current.parent_order_id and len(chain) < MAX_PARENT_HOPS:
        chain.append(current.parent_order_id)
        current = facts.get(current.parent_order_id)
    return chain
