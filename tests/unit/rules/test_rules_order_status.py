"""Rules §7: the order-level backorder status over all its lines."""

from __future__ import annotations

from recalculator.domain.engine import Engine
from support import created, event, feed


def po(sku: str, qty: int) -> dict:
    return event("POReceived", {"po_id": "PO-1", "warehouse_id": "W1",
                                "lines": [{"sku": sku, "qty": qty}]})


def test_status_is_full_when_every_unit_of_every_line_is_backordered():
    """§7: "Full when B == Q > 0": lines X 2 and Y 3 with no stock → B = Q = 5."""
    [made] = feed(Engine(), created("o1", [("1", "X", 2), ("2", "Y", 3)]))
    assert (made.orders[0].status, made.orders[0].previous_status) == ("Full", "None")


def test_status_is_partial_when_one_line_is_clear_and_another_backordered():
    """§7: "Partial when 0 < B < Q": X arrives (2), Y still short (3) → B 3 of Q 5."""
    engine = Engine()
    feed(engine, created("o1", [("1", "X", 2), ("2", "Y", 3)]))
    [received] = feed(engine, po("X", 2))
    assert (received.orders[0].status, received.orders[0].previous_status) == ("Partial", "Full")


def test_status_is_partial_when_a_single_line_is_partly_backordered():
    """§7: one line of 5 with 2 on hand → B 3 of Q 5 → Partial."""
    engine = Engine()
    _, made = feed(engine, event("InventoryAdjusted", {"sku": "X", "warehouse_id": "W1",
                                                       "set_to": 2}),
                   created("o1", [("1", "X", 5)]))
    assert made.orders[0].status == "Partial"


def test_status_is_none_when_nothing_is_backordered():
    """§7: "None when B == 0": once Y arrives too, B = 0."""
    engine = Engine()
    feed(engine, created("o1", [("1", "X", 2), ("2", "Y", 3)]), po("X", 2))
    [received] = feed(engine, po("Y", 3))
    assert (received.orders[0].status, received.orders[0].previous_status) == ("None", "Partial")
