"""Rules §4: which lines take part (order status, payment status and their settings), what a
non-calculated line does, and frozen lines (max_days_to_be_back)."""

from __future__ import annotations

import pytest
from backorder_events import BackorderSettings
from recalculator.domain.engine import Engine
from support import backorder_of_new_line as _backorder
from support import created, event, feed, order_lines, stock

# -- order status ---------------------------------------------------------------------------

@pytest.mark.parametrize("status, backorder", [
    ("InProcess", 2), ("OnHold", 0), ("Quote", 0), ("Completed", 0),
    ("Cancelled", 0), ("Void", 0), ("ShoppingCart", 0), ("ProblemOrder", 0),
])
def test_only_in_process_orders_are_calculated_by_default(status, backorder):
    """§4: "in order_status InProcess, or OnHold with include_on_hold"."""
    assert _backorder(order_status=status) == backorder


def test_on_hold_orders_are_calculated_with_include_on_hold():
    """§4: "OnHold with include_on_hold"."""
    assert _backorder(order_status="OnHold", include_on_hold=True) == 2


@pytest.mark.parametrize("status", ["Quote", "Completed", "Cancelled", "Void", "ShoppingCart",
                                    "ProblemOrder"])
def test_include_on_hold_does_not_bring_in_other_statuses(status):
    """§4: include_on_hold adds OnHold only."""
    assert _backorder(order_status=status, include_on_hold=True) == 0


# -- payment status -------------------------------------------------------------------------

@pytest.mark.parametrize("payment, backorder", [
    ("Charged", 2), ("Authorized", 0), ("Unpaid", 2), ("Uncleared", 2), ("PartiallyPaid", 2),
    ("PartiallyRefunded", 0), ("Refunded", 0), ("PaymentError", 0),
])
def test_payment_statuses_with_default_settings(payment, backorder):
    """§4: "payment_status Charged, or Authorized with include_authorized, or Unpaid / Uncleared /
    PartiallyPaid with include_unpaid_and_partially_paid" (default on; include_authorized off)."""
    assert _backorder(payment_status=payment) == backorder


def test_authorized_orders_are_calculated_with_include_authorized():
    """§4: "Authorized with include_authorized"."""
    assert _backorder(payment_status="Authorized", include_authorized=True) == 2


@pytest.mark.parametrize("payment", ["Unpaid", "Uncleared", "PartiallyPaid"])
def test_unpaid_like_orders_are_left_out_when_include_unpaid_and_partially_paid_is_off(payment):
    """§4: Unpaid / Uncleared / PartiallyPaid only "with include_unpaid_and_partially_paid"."""
    assert _backorder(payment_status=payment, include_unpaid_and_partially_paid=False) == 0


def test_charged_orders_stay_calculated_when_unpaid_are_left_out():
    """§4: Charged is always calculated."""
    assert _backorder(payment_status="Charged", include_unpaid_and_partially_paid=False) == 2


@pytest.mark.parametrize("payment", ["Refunded", "PartiallyRefunded", "PaymentError"])
def test_refunded_and_errored_payments_are_never_calculated(payment):
    """§4: "(refunded and errored payments are never calculated)" — all includes on."""
    assert _backorder(payment_status=payment, include_authorized=True, include_on_hold=True,
                      include_unpaid_and_partially_paid=True) == 0


# -- lines that are not calculated ----------------------------------------------------------

def test_a_line_that_is_not_calculated_consumes_no_supply():
    """§4: "A line that is not calculated consumes no supply". An older Quote for 2 leaves the 2
    on hand to the newer InProcess order."""
    engine = Engine()
    feed(engine, stock("X", 2),
         created("quote", [("1", "X", 2)], order_status="Quote", date="2025-04-01T10:00:00Z"),
         created("live", [("1", "X", 2)], date="2025-04-02T10:00:00Z"))
    assert order_lines(engine, "live") == {"1": 0}
    assert order_lines(engine, "quote") == {"1": 0}


def test_a_line_that_stops_being_calculated_drops_to_zero_at_the_next_recalculation():
    """§4: "its backorder quantity becomes 0 when its SKU is recalculated" (not before)."""
    engine = Engine()
    feed(engine, created("o1", [("1", "X", 2)]),
         event("OrderStatusChanged", {"order_id": "o1", "order_status": "Cancelled"}))
    assert order_lines(engine, "o1") == {"1": 2}
    [recalc] = feed(engine, event("RecalculateBackorders", {"skus": ["X"]}))
    assert order_lines(engine, "o1") == {"1": 0}
    assert (recalc.orders[0].status, recalc.orders[0].previous_status) == ("None", "Full")


# -- frozen lines (max_days_to_be_back) -----------------------------------------------------

OLD, NOW = "2025-04-01T10:00:00Z", "2025-04-30T10:00:00Z"


def _with_frozen_old_order(**settings) -> Engine:
    """o-old (5 of X, dated 29 days before NOW) got 3 of 3 on hand when it was new: backorder 2,
    allocated 3. At NOW, with max_days 5, it is frozen."""
    engine = Engine(BackorderSettings(max_days_to_be_back=5, **settings))
    feed(engine, stock("X", 3, time=OLD),
         created("o-old", [("1", "X", 5)], date=OLD, time=OLD))
    assert order_lines(engine, "o-old") == {"1": 2}
    return engine


def test_frozen_line_keeps_its_published_backorder_when_stock_arrives():
    """§4: "A frozen line keeps its published backorder quantity": 10 more arrive, it stays 2."""
    engine = _with_frozen_old_order()
    [received] = feed(engine, event("POReceived", {"po_id": "P", "warehouse_id": "W1",
                                                   "lines": [{"sku": "X", "qty": 10}]}, time=NOW))
    assert order_lines(engine, "o-old") == {"1": 2}
    assert received.orders == []


def test_frozen_lines_allocated_qty_is_taken_from_supply_first():
    """§4: "its allocated quantity (qty - backorder) is taken from the pool's supply first". The
    frozen order holds 3 of 3: a new order for 5 gets nothing; after 4 more arrive it gets 4
    (backorder 1), while the frozen one still shows 2."""
    engine = _with_frozen_old_order()
    feed(engine, created("o-new", [("1", "X", 5)], date=NOW, time=NOW))
    assert order_lines(engine, "o-new") == {"1": 5}
    feed(engine, event("POReceived", {"po_id": "P", "warehouse_id": "W1",
                                      "lines": [{"sku": "X", "qty": 4}]}, time=NOW))
    assert order_lines(engine, "o-new") == {"1": 1}
    assert order_lines(engine, "o-old") == {"1": 2}


def test_frozen_lines_take_supply_before_a_prioritized_rush_order():
    """§4: taken "before anyone else" — even a rush order with prioritize_rush."""
    engine = _with_frozen_old_order(prioritize_rush=True)
    feed(engine, created("rush", [("1", "X", 3)], rush=True, date=NOW, time=NOW))
    assert order_lines(engine, "rush") == {"1": 3}


def test_what_frozen_lines_leave_never_goes_below_zero():
    """§4: "(what is left never goes below 0)". Stock drops to 1 while the frozen line holds 3: a
    new order for 5 is backordered 5, not 7."""
    engine = _with_frozen_old_order()
    feed(engine, stock("X", 1, time=NOW), created("o-new", [("1", "X", 5)], date=NOW, time=NOW))
    assert order_lines(engine, "o-new") == {"1": 5}
    assert order_lines(engine, "o-old") == {"1": 2}
