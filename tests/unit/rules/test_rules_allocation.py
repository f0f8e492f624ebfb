"""Rules §6: plain allocation, prioritize_fully_shippable, and consider_replacement_sku_qty."""

from __future__ import annotations

from backorder_events import BackorderSettings
from recalculator.domain.engine import Engine
from support import created, event, feed, order_lines, stock


def day(n: int) -> str:
    return f"2025-04-{n:02d}T10:00:00Z"


def product(sku: str, replacement: str) -> dict:
    return event("ProductUpserted", {"sku": sku, "replacement_sku": replacement})


def po(sku: str, qty: int, warehouse: str = "W1") -> dict:
    return event("POReceived", {"po_id": "PO-1", "warehouse_id": warehouse,
                                "lines": [{"sku": sku, "qty": qty}]})


def backorders(engine: Engine, *order_ids: str) -> list[int]:
    return [sum(order_lines(engine, oid).values()) for oid in order_ids]


# -- plain and fully-shippable --------------------------------------------------------------

def _three_orders(supply: int, qtys: tuple[int, int, int], **settings) -> list[int]:
    engine = Engine(BackorderSettings(**settings))
    feed(engine, stock("X", supply),
         *(created(oid, [("1", "X", qty)], date=day(n))
           for n, (oid, qty) in enumerate(zip("abc", qtys), start=1)))
    return backorders(engine, "a", "b", "c")


def test_plain_allocation_gives_each_line_min_of_qty_and_what_is_left():
    """§6: "Plain: each line in priority order gets min(qty, S_left)"; backorder = qty -
    allocated. 5 on hand, three orders of 2 → 0, 0, 1."""
    assert _three_orders(5, (2, 2, 2)) == [0, 0, 1]


def test_plain_allocation_hands_a_partial_quantity_to_the_first_short_line():
    """§6 plain: 10 on hand for 8, 5, 2 → a gets 8, b gets 2 (backorder 3), c nothing (2)."""
    assert _three_orders(10, (8, 5, 2)) == [0, 3, 2]


def test_fully_shippable_first_pass_gives_whole_lines_that_fit_in_priority_order():
    """§6: "first pass in priority order gives a line its whole qty when qty <= S_left and skips
    it otherwise". 10 on hand for 8, 5, 2 → a 8, b skipped, c 2: backorders 0, 5, 0."""
    assert _three_orders(10, (8, 5, 2), prioritize_fully_shippable=True) == [0, 5, 0]


def test_fully_shippable_second_pass_gives_the_rest_to_short_lines_partially():
    """§6: "a second pass gives what is left, in priority order, to the lines still short
    (partially)". 15 on hand, older 40, newer 10: newer 10, older the remaining 5 → 35."""
    engine = Engine(BackorderSettings(prioritize_fully_shippable=True))
    feed(engine, stock("X", 15),
         created("older", [("1", "X", 40)], date=day(1)),
         created("newer", [("1", "X", 10)], date=day(2)))
    assert backorders(engine, "older", "newer") == [35, 0]


def test_fully_shippable_second_pass_follows_priority_order():
    """§6 second pass "in priority order": 7 on hand for 8, 9, 3 → first pass c 3; the 4 left go
    to a (older) → a backorder 4, b 9, c 0."""
    assert _three_orders(7, (8, 9, 3), prioritize_fully_shippable=True) == [4, 9, 0]


# -- replacement SKUs -------------------------------------------------------------------------

def rep_engine(**settings) -> Engine:
    return Engine(BackorderSettings(consider_replacement_sku_qty=True, **settings))


def test_short_line_draws_on_its_replacement_skus_leftover():
    """§6: "lines still short whose product has a replacement_sku draw from the replacement's
    leftover supply". A has none, its replacement R has 3: an order for 5 A → backorder 2."""
    engine = rep_engine()
    feed(engine, product("A", "R"), stock("R", 3), created("o1", [("1", "A", 5)]))
    assert order_lines(engine, "o1") == {"1": 2}


def test_replacement_stock_is_ignored_without_consider_replacement_sku_qty():
    """§2 default consider_replacement_sku_qty false: the same order is backordered 5."""
    engine = Engine()
    feed(engine, product("A", "R"), stock("R", 3), created("o1", [("1", "A", 5)]))
    assert order_lines(engine, "o1") == {"1": 5}


def test_a_line_is_topped_up_from_the_replacement_after_its_own_pool():
    """§6: "after every pool is allocated": R's own order takes 2 of R's 3; the A order gets 2
    from A and the 1 R left over → both backorder 0."""
    engine = rep_engine()
    feed(engine, product("A", "R"), stock("A", 2), stock("R", 3),
         created("a", [("1", "A", 3)], date=day(1)),
         created("r", [("1", "R", 2)], date=day(2)))
    assert order_lines(engine, "a") == {"1": 0}
    assert order_lines(engine, "r") == {"1": 0}


def test_replacement_leftover_is_what_its_own_lines_do_not_use():
    """§6: leftover = "its supply minus its own allocations": R's own newer order for 2 is
    served from R's 3 before the older A order draws the 1 left → A backorder 4."""
    engine = rep_engine()
    feed(engine, product("A", "R"), stock("R", 3),
         created("a", [("1", "A", 5)], date=day(1)),
         created("r", [("1", "R", 2)], date=day(2)))
    assert order_lines(engine, "r") == {"1": 0}
    assert order_lines(engine, "a") == {"1": 4}


def test_short_lines_of_different_skus_compete_for_a_replacement_in_one_priority_order():
    """§6: "all such lines competing in one priority order". A and B both have replacement R; 3 R
    arrive: the older B order takes 2, the newer A order gets 1 (backorder 1)."""
    engine = rep_engine()
    feed(engine, product("A", "R"), product("B", "R"),
         created("a", [("1", "A", 2)], date=day(2)),
         created("b", [("1", "B", 2)], date=day(1)),
         po("R", 3))
    assert order_lines(engine, "b") == {"1": 0}
    assert order_lines(engine, "a") == {"1": 1}


def test_replacement_of_a_replacement_is_not_used():
    """§6: "One hop only." A → B → C with stock only in C: a B order draws on C, an A order
    does not."""
    engine = rep_engine()
    feed(engine, product("A", "B"), product("B", "C"), stock("C", 5),
         created("a", [("1", "A", 2)]), created("b", [("1", "B", 1)]))
    assert order_lines(engine, "a") == {"1": 2}
    assert order_lines(engine, "b") == {"1": 0}


def test_warehouse_mode_replacement_draws_only_in_the_same_warehouse():
    """§6: "(... in the same warehouse in warehouse-based mode)". R in W2 does not help a W1
    order; R received into W1 does."""
    engine = rep_engine(warehouse_based=True)
    feed(engine, product("A", "R"), stock("R", 5, "W2"),
         created("o1", [("1", "A", 2)], ship_from_warehouse_id="W1"))
    assert order_lines(engine, "o1") == {"1": 2}
    feed(engine, po("R", 2, "W1"))
    assert order_lines(engine, "o1") == {"1": 0}


def test_a_removed_replacement_is_no_longer_drawn_on_at_the_next_recalculation():
    """§8: "A recalculation of a SKU recomputes 3–6 from current inputs"; §6 draws apply only to
    lines "whose product has a replacement_sku". A drew 2 from R; A loses its replacement; the
    next recalculation of A must backorder the line 2."""
    engine = rep_engine()
    feed(engine, product("A", "R"), stock("R", 2), created("o1", [("1", "A", 2)]))
    assert order_lines(engine, "o1") == {"1": 0}
    feed(engine, event("ProductUpserted", {"sku": "A", "replacement_sku": None}),
         event("RecalculateBackorders", {}))
    assert order_lines(engine, "o1") == {"1": 2}
