"""Rules §10: bad input changes nothing and says why; duplicates are skipped."""

from __future__ import annotations

import copy

import pytest
from backorder_events import InvalidEvent
from recalculator.domain.engine import Engine
from support import created, event, feed, published, stock


def snapshot(engine: Engine):
    """Everything a rejected event must leave alone."""
    orders = {
        oid: (o.order_status, o.payment_status, o.rush, o.picked, o.published_status,
              {lid: (line.sku, line.qty) for lid, line in o.lines.items()})
        for oid, o in engine.orders.items()
    }
    return published(engine), orders, copy.deepcopy(engine.stock), dict(engine.totals)


@pytest.fixture
def engine() -> Engine:
    """o1: line 1 X 3 with 1 on hand → backorder 2; o2: line 1 X 1 → backorder 1."""
    engine = Engine()
    feed(engine, stock("X", 1), created("o1", [("1", "X", 3)], date="2025-04-01T10:00:00Z"),
         created("o2", [("1", "X", 1)], date="2025-04-02T10:00:00Z"), stock("X", 4))
    assert published(engine) == {("o1", "1"): 2, ("o2", "1"): 1}
    return engine


def _assert_rejected_without_change(engine: Engine, raw: dict, *words: str) -> None:
    before = snapshot(engine)
    [outcome] = feed(engine, raw)
    assert outcome.status == "rejected"
    assert (outcome.orders, outcome.products) == ([], [])
    for word in words:
        assert word in outcome.reason
    assert snapshot(engine) == before


@pytest.mark.parametrize("raw", [
    event("OrderSplit", {"order_id": "nope", "new_order_id": "n",
                         "lines": [{"line_id": "1", "qty": 1, "new_line_id": "1"}]}),
    event("ItemAdded", {"order_id": "nope", "line": {"line_id": "9", "sku": "X", "qty": 1}}),
    event("ItemReplaced", {"order_id": "nope", "line_id": "1", "new_sku": "Y"}),
    event("OrderStatusChanged", {"order_id": "nope", "order_status": "Cancelled"}),
    event("ReallocateBackorder", {"order_id": "nope",
                                  "lines": [{"line_id": "1", "backorder_qty": 0}]}),
    event("MarkBackorder", {"order_ids": ["o1", "nope"]}),
    event("MarkNotBackorder", {"order_ids": ["o1", "nope"]}),
    event("RecalculateBackorders", {"order_ids": ["o1", "nope"]}),
], ids=lambda raw: raw["type"])
def test_an_unknown_order_is_rejected_and_changes_nothing(engine, raw):
    """§10: an event that "refers to an unknown order (except OrderCreated) ... changes nothing"
    — not even for the known o1 listed beside it."""
    _assert_rejected_without_change(engine, raw, "unknown order", "nope")


def test_creating_an_order_that_exists_is_rejected_and_changes_nothing(engine):
    """§10: an event that "creates an order that exists" changes nothing: o1 keeps its X line."""
    _assert_rejected_without_change(engine, created("o1", [("1", "Y", 5)]), "o1", "exists")


@pytest.mark.parametrize("raw", [
    event("ItemReplaced", {"order_id": "o1", "line_id": "9", "new_sku": "Y"}),
    event("OrderSplit", {"order_id": "o1", "new_order_id": "o9",
                         "lines": [{"line_id": "9", "qty": 1, "new_line_id": "1"}]}),
    event("ReallocateBackorder", {"order_id": "o1",
                                  "lines": [{"line_id": "9", "backorder_qty": 0}]}),
], ids=lambda raw: raw["type"])
def test_an_unknown_line_is_rejected_and_changes_nothing(engine, raw):
    """§10: an event that "names an unknown line" changes nothing."""
    _assert_rejected_without_change(engine, raw, "no line", "'9'")


def test_splitting_more_than_the_lines_qty_is_rejected_and_changes_nothing(engine):
    """§10 "an impossible value": o1's line has 3; moving 4 is refused, no o9 appears."""
    _assert_rejected_without_change(
        engine,
        event("OrderSplit", {"order_id": "o1", "new_order_id": "o9",
                             "lines": [{"line_id": "1", "qty": 4, "new_line_id": "1"}]}),
        "4", "3")
    assert "o9" not in engine.orders


def test_a_reallocation_above_qty_is_rejected_as_a_whole(engine):
    """§10: "a reallocation above the line's qty" changes nothing — the valid line listed with
    it is not applied either."""
    feed(engine, event("ItemAdded", {"order_id": "o1",
                                     "line": {"line_id": "2", "sku": "Y", "qty": 2}}))
    _assert_rejected_without_change(
        engine,
        event("ReallocateBackorder", {"order_id": "o1", "lines": [
            {"line_id": "2", "backorder_qty": 0}, {"line_id": "1", "backorder_qty": 4}]}),
        "above", "3")


@pytest.mark.parametrize("raw", [
    created("o9", [("1", "X", 0)]),
    event("ItemReplaced", {"order_id": "o1", "line_id": "1", "new_sku": "Y", "qty": 0}),
    event("OrderSplit", {"order_id": "o1", "new_order_id": "o9",
                         "lines": [{"line_id": "1", "qty": -1, "new_line_id": "1"}]}),
], ids=lambda raw: raw["type"])
def test_a_qty_of_zero_or_less_fails_validation_with_a_readable_reason(engine, raw):
    """§10: an event that "fails validation" or carries "qty ≤ 0" never reaches the engine."""
    before = snapshot(engine)
    with pytest.raises(InvalidEvent, match="qty"):
        feed(engine, raw)
    assert snapshot(engine) == before


def test_processing_goes_on_after_a_rejected_event(engine):
    """§10: "processing goes on": the next event applies (1 more X → o2 served)."""
    feed(engine, event("MarkBackorder", {"order_ids": ["nope"]}))
    [received] = feed(engine, event("POReceived", {"po_id": "P", "warehouse_id": "W1",
                                                   "lines": [{"sku": "X", "qty": 1}]}))
    assert received.status == "applied"
    assert published(engine) == {("o1", "1"): 0, ("o2", "1"): 0}


def test_an_event_id_already_processed_is_skipped_as_a_duplicate(engine):
    """§10: "An event whose id was already processed is skipped", even with different data."""
    first = event("MarkBackorder", {"order_ids": ["o2"]}, id="dup-1")
    again = event("MarkNotBackorder", {"order_ids": ["o1", "o2"]}, id="dup-1")
    [applied] = feed(engine, first)
    assert applied.status == "applied"
    before = snapshot(engine)
    [skipped] = feed(engine, again)
    assert skipped.status == "duplicate"
    assert "dup-1" in skipped.reason
    assert (skipped.orders, skipped.products) == ([], [])
    assert snapshot(engine) == before
