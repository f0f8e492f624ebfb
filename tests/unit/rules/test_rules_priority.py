"""Rules §5: the order in which calculated lines of a pool are served."""

from __future__ import annotations

from backorder_events import BackorderSettings
from recalculator.domain.engine import Engine
from support import created, feed, order_lines, stock


def day(n: int) -> str:
    return f"2025-04-{n:02d}T10:00:00Z"


def _older_plain_newer_flagged(flag: str, **settings) -> tuple[int, int]:
    """2 on hand; an older plain order and a newer `flag`ged one, 2 each. → (older, newer)."""
    engine = Engine(BackorderSettings(**settings))
    feed(engine, stock("X", 2),
         created("older", [("1", "X", 2)], date=day(1)),
         created("newer", [("1", "X", 2)], date=day(2), **{flag: True}))
    return order_lines(engine, "older")["1"], order_lines(engine, "newer")["1"]


def test_picked_orders_are_served_first_with_prioritize_picked():
    """§5: "1. picked orders first, when prioritize_picked"."""
    assert _older_plain_newer_flagged("picked", prioritize_picked=True) == (2, 0)


def test_picked_flag_is_ignored_without_prioritize_picked():
    """§5: without the setting the date decides: the older order is served."""
    assert _older_plain_newer_flagged("picked") == (0, 2)


def test_rush_orders_are_served_first_with_prioritize_rush():
    """§5: "2. rush orders first, when prioritize_rush"."""
    assert _older_plain_newer_flagged("rush", prioritize_rush=True) == (2, 0)


def test_rush_flag_is_ignored_without_prioritize_rush():
    """§5: without the setting the date decides."""
    assert _older_plain_newer_flagged("rush") == (0, 2)


def test_picked_comes_before_rush_when_both_are_prioritized():
    """§5: picked is key 1, rush key 2: a newer picked order beats an older rush order."""
    engine = Engine(BackorderSettings(prioritize_picked=True, prioritize_rush=True))
    feed(engine, stock("X", 2),
         created("rush", [("1", "X", 2)], date=day(1), rush=True),
         created("picked", [("1", "X", 2)], date=day(2), picked=True))
    assert order_lines(engine, "picked") == {"1": 0}
    assert order_lines(engine, "rush") == {"1": 2}


def _payment_date_orders(supply: int, **settings) -> dict[str, int]:
    """unpaid: oldest order date, no payment date; b: order day 2, paid day 5; c: order day 3,
    paid day 4. One unit each."""
    engine = Engine(BackorderSettings(**settings))
    feed(engine, stock("X", supply),
         created("unpaid", [("1", "X", 1)], date=day(1), payment_status="Unpaid"),
         created("b", [("1", "X", 1)], date=day(2), payment_date=day(5)),
         created("c", [("1", "X", 1)], date=day(3), payment_date=day(4)))
    return {oid: order_lines(engine, oid)["1"] for oid in ("unpaid", "b", "c")}


def test_use_payment_date_serves_paid_orders_before_orders_without_payment_date():
    """§5: "with use_payment_date, orders that have a payment_date come before all orders
    without one". 2 on hand: b and c are served, the older unpaid order is not."""
    assert _payment_date_orders(2, use_payment_date=True) == {"unpaid": 1, "b": 0, "c": 0}


def test_use_payment_date_sorts_paid_orders_by_payment_date():
    """§5: "sorted by payment_date": c (paid day 4) before b (paid day 5, ordered earlier)."""
    assert _payment_date_orders(1, use_payment_date=True) == {"unpaid": 1, "b": 1, "c": 0}


def test_without_use_payment_date_the_order_date_decides():
    """§5: "3. the date: order_date": the unpaid order dated day 1 is served first."""
    assert _payment_date_orders(1) == {"unpaid": 0, "b": 1, "c": 1}


def test_use_payment_date_sorts_orders_without_payment_date_by_order_date():
    """§5: "and the rest by order_date"."""
    engine = Engine(BackorderSettings(use_payment_date=True))
    feed(engine, stock("X", 1),
         created("later", [("1", "X", 1)], date=day(2), payment_status="Unpaid"),
         created("earlier", [("1", "X", 1)], date=day(1), payment_status="Unpaid"))
    assert order_lines(engine, "earlier") == {"1": 0}
    assert order_lines(engine, "later") == {"1": 1}


def test_ties_on_date_are_broken_by_order_id_in_string_order():
    """§5: "4. order_id, then line_id (string order)": "10" < "9" as strings."""
    engine = Engine()
    feed(engine, stock("X", 1),
         created("9", [("1", "X", 1)], date=day(1)),
         created("10", [("1", "X", 1)], date=day(1)))
    assert order_lines(engine, "10") == {"1": 0}
    assert order_lines(engine, "9") == {"1": 1}


def test_ties_within_an_order_are_broken_by_line_id_in_string_order():
    """§5: same order, same SKU: line "10" comes before line "9"."""
    engine = Engine()
    feed(engine, stock("X", 1), created("o1", [("9", "X", 1), ("10", "X", 1)]))
    assert order_lines(engine, "o1") == {"9": 1, "10": 0}
