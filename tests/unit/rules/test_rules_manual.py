"""Rules §8, manual actions: ReallocateBackorder, MarkBackorder, MarkNotBackorder."""

from __future__ import annotations

import pytest
from backorder_events import InvalidEvent
from recalculator.domain.engine import Engine
from recalculator.domain.results import LineChange, ProductBackorderChange
from support import created, event, feed, order_lines, published, stock


def reallocate(order_id: str, **values: int) -> dict:
    return event("ReallocateBackorder", {
        "order_id": order_id,
        "lines": [{"line_id": lid, "backorder_qty": qty} for lid, qty in values.items()]})


def _full_order() -> Engine:
    """o1: line a X 3, line b Y 2, no stock → Full (3, 2)."""
    engine = Engine()
    feed(engine, created("o1", [("a", "X", 3), ("b", "Y", 2)]))
    return engine


def test_reallocate_backorder_sets_the_listed_lines_with_reason_manual():
    """§8: "ReallocateBackorder sets the listed lines' backorder quantities"; §9 reason manual.
    Line a 3 → 1; line b untouched but listed: Partial (3 of 5)."""
    engine = _full_order()
    [manual] = feed(engine, reallocate("o1", a=1))
    [o1] = manual.orders
    assert (o1.status, o1.previous_status, o1.reason) == ("Partial", "Full", "manual")
    assert o1.lines == (LineChange("a", "X", 3, 1, 3), LineChange("b", "Y", 2, 2, 2))
    assert manual.products == [ProductBackorderChange("X", 1, 3)]


@pytest.mark.parametrize("value", [0, 3])
def test_reallocate_backorder_accepts_the_bounds_zero_and_qty(value):
    """§8: "(0 ≤ value ≤ qty)"."""
    engine = Engine()
    feed(engine, stock("X", 1), created("o1", [("a", "X", 3)]))  # backorder 2
    [manual] = feed(engine, reallocate("o1", a=value))
    assert manual.status == "applied"
    assert order_lines(engine, "o1") == {"a": value}


def test_reallocate_backorder_above_qty_is_rejected():
    """§8 "(0 ≤ value ≤ qty)" / §10: "a reallocation above the line's qty" changes nothing."""
    engine = _full_order()
    [manual] = feed(engine, reallocate("o1", a=4))
    assert manual.status == "rejected"
    assert "above" in manual.reason and "'a'" in manual.reason
    assert order_lines(engine, "o1") == {"a": 3, "b": 2}


def test_reallocate_backorder_below_zero_fails_validation():
    """§8 "(0 ≤ value ...)": a negative value never reaches the engine (§10: it fails
    validation)."""
    with pytest.raises(InvalidEvent, match="backorder_qty"):
        feed(Engine(), reallocate("o1", a=-1))


def test_mark_backorder_sets_every_line_to_its_qty():
    """§8: "MarkBackorder sets every line of the listed orders to backorder = qty", even with
    plenty on hand."""
    engine = Engine()
    feed(engine, stock("X", 9), stock("Y", 9), created("o1", [("a", "X", 3), ("b", "Y", 2)]))
    [manual] = feed(engine, event("MarkBackorder", {"order_ids": ["o1"]}))
    [o1] = manual.orders
    assert (o1.status, o1.previous_status, o1.reason) == ("Full", "None", "manual")
    assert o1.lines == (LineChange("a", "X", 3, 3, 0), LineChange("b", "Y", 2, 2, 0))


def test_mark_not_backorder_sets_every_line_to_zero():
    """§8: "MarkNotBackorder sets every line of the listed orders to backorder = 0"."""
    engine = _full_order()
    [manual] = feed(engine, event("MarkNotBackorder", {"order_ids": ["o1"]}))
    [o1] = manual.orders
    assert (o1.status, o1.previous_status, o1.reason) == ("None", "Full", "manual")
    assert o1.lines == (LineChange("a", "X", 3, 0, 3), LineChange("b", "Y", 2, 0, 2))


def test_manual_actions_never_recalculate():
    """§8: "Manual actions never recalculate": unmarking o1 does not hand its units to o2, nor
    apply the 5 X that arrived without a recalculation."""
    engine = Engine()
    feed(engine, created("o1", [("1", "X", 2)]), created("o2", [("1", "X", 2)]), stock("X", 5))
    [manual] = feed(engine, event("MarkNotBackorder", {"order_ids": ["o1"]}))
    assert [c.order_id for c in manual.orders] == ["o1"]
    assert published(engine) == {("o1", "1"): 0, ("o2", "1"): 2}


def test_manual_values_are_overwritten_by_the_next_recalculation():
    """§8: a recalculation "replaces the published quantities of all its lines, manual values
    included" (seed: "your changes will be overwritten when the BackOrderReCalculateService
    re-runs")."""
    engine = Engine()
    feed(engine, stock("X", 5), created("o1", [("1", "X", 2)]),
         event("MarkBackorder", {"order_ids": ["o1"]}))
    assert order_lines(engine, "o1") == {"1": 2}
    [later] = feed(engine, event("RecalculateBackorders", {}))
    assert order_lines(engine, "o1") == {"1": 0}
    assert (later.orders[0].reason, later.orders[0].lines) == (
        "recalculation", (LineChange("1", "X", 2, 0, 2),))
