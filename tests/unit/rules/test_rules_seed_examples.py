"""The seed's own worked examples (sellercloud-backorders.txt), end to end."""

from __future__ import annotations

from backorder_events import BackorderSettings
from recalculator.domain.engine import Engine
from recalculator.domain.results import LineChange, ProductBackorderChange
from support import created, event, feed, order_lines, stock


def po(sku: str, qty: int, warehouse: str = "W1") -> dict:
    return event("POReceived", {"po_id": "PO-1", "warehouse_id": warehouse,
                                "lines": [{"sku": sku, "qty": qty}]})


def test_cat_hammock_order_is_a_full_backorder_of_2_then_a_po_receive_of_2_clears_it():
    """Seed: order #5145827, cat-hammock QTY 2, INVENTORY AVAILABLE 0, BACKORDER QTY 2; "When
    inventory becomes available, this quantity gets adjusted, and the order status gets
    updated accordingly" (PO Receive is a listed trigger)."""
    engine = Engine()
    [made] = feed(engine, created(5145827, [("1", "cat-hammock", 2)], payment_status=10,
                                  date="2023-08-16T18:30:00Z", company_id="Thirsty Tea"))
    [change] = made.orders
    assert (change.order_id, change.company_id) == ("5145827", "Thirsty Tea")
    assert (change.status, change.previous_status) == ("Full", "None")
    assert change.lines == (LineChange("1", "cat-hammock", 2, 2, 0),)
    assert made.products == [ProductBackorderChange("cat-hammock", 2, 0)]

    [received] = feed(engine, po("cat-hammock", 2))
    [change] = received.orders
    assert (change.status, change.previous_status) == ("None", "Full")
    assert change.lines == (LineChange("1", "cat-hammock", 2, 0, 2),)
    assert received.products == [ProductBackorderChange("cat-hammock", 0, 2)]


def test_older_orders_get_updated_first_when_stock_arrives():
    """Seed: "When inventory becomes available, older orders get updated first." The newer
    order is logged first, so it is the order date that decides, not arrival."""
    engine = Engine()
    feed(engine,
         created("newer", [("1", "X", 3)], date="2025-04-02T10:00:00Z"),
         created("older", [("1", "X", 3)], date="2025-04-01T10:00:00Z"))
    assert (order_lines(engine, "older"), order_lines(engine, "newer")) == ({"1": 3}, {"1": 3})
    [received] = feed(engine, po("X", 3))
    assert order_lines(engine, "older") == {"1": 0}
    assert order_lines(engine, "newer") == {"1": 3}
    assert [c.order_id for c in received.orders] == ["older"]


def _forty_ten(**settings) -> Engine:
    engine = Engine(BackorderSettings(**settings))
    feed(engine, stock("X", 10),
         created("older", [("1", "X", 40)], date="2025-04-01T10:00:00Z"),
         created("newer", [("1", "X", 10)], date="2025-04-02T10:00:00Z"))
    return engine


def test_prioritize_fully_shippable_seed_example_gives_the_10_on_hand_to_the_newer_order_for_10():
    """Seed: "an order for 40 items with 10 on hand, and a second order for 10 comes in later,
    this setting will allocate quantity to the second order instead of reserving it for the
    first." Rules §6: the newer gets 10 (backorder 0), the older gets 0 (backorder 40)."""
    engine = _forty_ten(prioritize_fully_shippable=True)
    assert order_lines(engine, "newer") == {"1": 0}
    assert order_lines(engine, "older") == {"1": 40}


def test_without_prioritize_fully_shippable_the_older_order_for_40_takes_the_10_on_hand():
    """Rules §6 plain: each line in priority order gets min(qty, S_left): older 10 (backorder
    30), newer 0 (backorder 10)."""
    engine = _forty_ten()
    assert order_lines(engine, "older") == {"1": 30}
    assert order_lines(engine, "newer") == {"1": 10}
