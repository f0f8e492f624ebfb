"""Rules §9: what is published after each input event."""

from __future__ import annotations

from datetime import UTC, datetime

from recalculator.domain.engine import Engine
from recalculator.domain.results import LineChange, ProductBackorderChange
from recalculator.publishing import output_events
from support import created, event, feed, stock


def po(lines: dict[str, int], id: str | None = None) -> dict:
    return event("POReceived", {"po_id": "PO-1", "warehouse_id": "W1",
                                "lines": [{"sku": s, "qty": q} for s, q in lines.items()]}, id=id)


def test_one_backorder_changed_per_changed_order_in_ascending_string_order_id():
    """§9: "for every order whose published backorder quantities or status changed, one
    BackorderChanged ... in ascending order_id" — as strings: "10" < "100" < "9"."""
    engine = Engine()
    feed(engine, *(created(oid, [("1", "X", 1)]) for oid in ("9", "100", "10")))
    [received] = feed(engine, po({"X": 3}))
    assert [c.order_id for c in received.orders] == ["10", "100", "9"]


def test_backorder_changed_lists_every_line_with_previous_values_and_the_cause_id():
    """§9: "every line with sku, qty, backorder_qty, previous_backorder_qty, reason ..., and the
    id of the event that caused it" — the unchanged Y line is listed too."""
    engine = Engine()
    feed(engine, created("o1", [("1", "X", 2), ("2", "Y", 1)], company_id="acme"), stock("Y", 1))
    [received] = feed(engine, po({"X": 2}, id="po-77"))
    [o1] = received.orders
    assert (o1.order_id, o1.company_id, o1.status, o1.previous_status) == (
        "o1", "acme", "Partial", "Full")
    assert (o1.reason, o1.cause_id) == ("recalculation", "po-77")
    assert o1.lines == (LineChange("1", "X", 2, 0, 2), LineChange("2", "Y", 1, 1, 1))


def test_product_backorder_changed_per_sku_whose_total_changed_in_ascending_sku():
    """§9: "For every SKU whose total published backorder quantity changed, one
    ProductBackorderChanged (sku, total, previous total), in ascending sku". c is unchanged."""
    engine = Engine()
    feed(engine, created("o1", [("1", "c", 1), ("2", "b", 2), ("3", "a", 3)]),
         created("o2", [("1", "a", 1)]))
    [received] = feed(engine, po({"b": 2, "a": 1}))
    assert received.products == [ProductBackorderChange("a", 3, 4),
                                 ProductBackorderChange("b", 0, 2)]


def test_orders_swapping_backorders_publish_orders_but_no_product_change():
    """§9: the SKU's total 2 is unchanged when prioritize_rush moves the 2 on hand from the older
    o1 to the rush o2: two BackorderChanged, no ProductBackorderChanged."""
    engine = Engine()
    feed(engine, stock("X", 2),
         created("o1", [("1", "X", 2)], date="2025-04-01T10:00:00Z"),
         created("o2", [("1", "X", 2)], date="2025-04-02T10:00:00Z", rush=True),
         event("SettingsChanged", {"settings": {"prioritize_rush": True}}))
    [recalc] = feed(engine, event("RecalculateBackorders", {}))
    assert [(c.order_id, c.status) for c in recalc.orders] == [("o1", "Full"), ("o2", "None")]
    assert recalc.products == []


def test_nothing_is_published_when_nothing_changed():
    """§9: only orders and SKUs that changed are published: a recalculation of current values
    and a PO that changes nobody's backorder publish nothing."""
    engine = Engine()
    feed(engine, stock("X", 5), created("o1", [("1", "X", 2)]), created("o2", [("1", "Y", 2)]))
    for outcome in feed(engine, event("RecalculateBackorders", {}), po({"X": 1})):
        assert (outcome.status, outcome.orders, outcome.products) == ("applied", [], [])


def test_an_order_created_with_enough_stock_publishes_nothing():
    """§9: a new order whose backorder is 0 and status None has nothing that changed."""
    _, made = feed(Engine(), stock("X", 5), created("o1", [("1", "X", 2)]))
    assert (made.orders, made.products) == ([], [])


def test_published_ids_derive_from_cause_and_order_so_a_replay_gives_the_same_ids():
    """§9: "Its id is derived from the cause's id and the order id, so a replay produces the same
    ids." Two runs of one log: same ids; two orders of one cause: different ids."""
    log = [created("o1", [("1", "X", 1)]), created("o2", [("1", "X", 1)]),
           po({"X": 2}, id="po-1")]
    runs = []
    for engine in (Engine(), Engine()):
        outcome = feed(engine, *log)[-1]
        stamp = datetime(2025, 4, 30, tzinfo=UTC)
        runs.append([e["id"] for e in output_events(outcome, "po-1", stamp)])
    assert runs[0] == runs[1]
    assert len(runs[0]) == 4 and len(set(runs[0])) == 4  # o1, o2, product X, position X
