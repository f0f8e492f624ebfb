"""The notifier's own projection of orders: customer data, order date and line names, kept
from the order events (pure; the store loads and saves the rows a batch touches).

Like the recalculator, the first `OrderCreated` of an order wins: a second one for the same
id is refused there, so it changes nothing here either. `OrderStatusChanged` only tells
when an order was closed (completed, cancelled, voided) or reopened: a closed order's row
is pruned once the retention window has passed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backorder_events import ItemAdded, ItemReplaced, OrderCreated, OrderSplit, OrderStatusChanged

from .facts import LineFacts, OrderFacts

ORDER_EVENT_TYPES = frozenset({"OrderCreated", "OrderSplit", "ItemAdded", "ItemReplaced", "OrderStatusChanged"})
CLOSED_STATUSES = frozenset({"Completed", "Cancelled", "Void"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _row(facts: dict[str, OrderFacts], order_id: str) -> OrderFacts:
    order = facts.get(order_id)
    if order is None:
        order = facts[order_id] = OrderFacts(order_id)
    return order


def apply(facts: dict[str, OrderFacts], event) -> set[str]:
    """Apply one parsed order event to `facts` (which must hold the rows of the orders it
    names); returns the ids of the orders that changed."""
    if isinstance(event, OrderCreated):
        data = event.data
        order = _row(facts, data.order_id)
        if order.known:
            return set()
        order.known = True
        order.company_id = data.company_id
        order.customer = (
            data.customer.model_dump(mode="json", exclude_none=True) if data.customer else None
        )
        order.order_date = data.order_date.isoformat().replace("+00:00", "Z")
        order.parent_order_id = None
        for line in data.lines:
            order.lines[line.line_id] = LineFacts(line.sku, line.name)
        return {order.order_id}
    if isinstance(event, OrderSplit):
        data = event.data
        new = _row(facts, data.new_order_id)
        if new.known:
            return set()
        original = _row(facts, data.order_id)
        for moved in data.lines:
            line = original.lines.get(moved.line_id)
            if line is not None:
                new.lines[moved.new_line_id] = LineFacts(line.sku, line.name)
        if original.known:
            # The new order copies every other attribute of the original (events.md).
            new.known = True
            new.company_id = original.company_id
            new.customer = original.customer
            new.order_date = original.order_date
        else:
            # The original's data has not arrived: the new order resolves through it later.
            new.parent_order_id = original.order_id
        return {new.order_id}
    if isinstance(event, ItemAdded):
        data = event.data
        order = _row(facts, data.order_id)
        order.lines[data.line.line_id] = LineFacts(data.line.sku, data.line.name)
        return {order.order_id}
    if isinstance(event, ItemReplaced):
        data = event.data
        order = _row(facts, data.order_id)
        # Another product now: the old line's name no longer applies.
        order.lines[data.line_id] = LineFacts(data.new_sku, None)
        return {order.order_id}
    if isinstance(event, OrderStatusChanged):
        data = event.data
        if "order_status" not in data.model_fields_set:
            return set()
        order = _row(facts, data.order_id)
        closed = data.order_status.value in CLOSED_STATUSES
        at = (event.time - _EPOCH) // timedelta(microseconds=1)
        if closed and (order.closed_at is None or at > order.closed_at):
            order.closed_at = at
        elif not closed and order.closed_at is not None and at >= order.closed_at:
            order.closed_at = None  # reopened
        else:
            return set()  # no change, or older than the closing it would undo
        return {order.order_id}
    return set()


def orders_named(event) -> list[str]:
    """The order ids an order event reads or writes (the rows to load before `apply`)."""
    data = event.data
    if isinstance(event, OrderSplit):
        return [data.order_id, data.new_order_id]
    order_id = getattr(data, "order_id", None)
    return [order_id] if order_id is not None else []
