"""Rules §8: which events recalculate which SKUs, and enable_backorder_workflow."""

from __future__ import annotations

import pytest
from backorder_events import BackorderSettings
from recalculator.domain.engine import Engine
from recalculator.domain.results import LineChange
from support import created, event, feed, order_lines, published, stock


def day(n: int) -> str:
    return f"2025-04-{n:02d}T10:00:00Z"


def po(sku: str, qty: int, warehouse: str = "W1") -> dict:
    return event("POReceived", {"po_id": "PO-1", "warehouse_id": warehouse,
                                "lines": [{"sku": sku, "qty": qty}]})


def recalc(**data) -> dict:
    return event("RecalculateBackorders", data)


def status(order_id: str, **fields) -> dict:
    return event("OrderStatusChanged", {"order_id": order_id, **fields})


# -- OrderCreated -----------------------------------------------------------------------------

def test_order_created_recalculates_its_skus_for_every_order():
    """§8: OrderCreated recalculates "the order's SKUs": the older o1 also gets the stock drop
    that no event had recalculated yet (2 → 0 on hand)."""
    engine = Engine()
    feed(engine, stock("X", 2), created("o1", [("1", "X", 2)], date=day(1)), stock("X", 0))
    assert order_lines(engine, "o1") == {"1": 0}
    [made] = feed(engine, created("o2", [("1", "X", 1)], date=day(2)))
    assert order_lines(engine, "o1") == {"1": 2}
    assert order_lines(engine, "o2") == {"1": 1}
    assert [c.order_id for c in made.orders] == ["o1", "o2"]


def test_stop_marking_on_create_recalculates_nothing_until_a_later_recalculation():
    """§8: OrderCreated recalculates "none when stop_marking_on_create"; seed: "The backorder
    status will still be updated once the BackOrderReCalculateService runs"."""
    engine = Engine(BackorderSettings(stop_marking_on_create=True))
    [made] = feed(engine, created("o1", [("1", "X", 2)]))
    assert (made.orders, made.products) == ([], [])
    assert order_lines(engine, "o1") == {"1": 0}
    feed(engine, recalc())
    assert order_lines(engine, "o1") == {"1": 2}


# -- OrderSplit -------------------------------------------------------------------------------

def test_order_split_recalculates_both_orders():
    """§8: OrderSplit recalculates "the SKUs of both orders". 2 on hand, o1 for 5 (backorder 3);
    3 move to o2. o1 (qty 2) comes first by order id → 0; o2 (qty 3) → 3."""
    engine = Engine()
    feed(engine, stock("X", 2), created("o1", [("1", "X", 5)]))
    [split] = feed(engine, event("OrderSplit", {"order_id": "o1", "new_order_id": "o2",
                                                "lines": [{"line_id": "1", "qty": 3,
                                                           "new_line_id": "n1"}]}))
    o1, o2 = split.orders
    assert (o1.order_id, o1.status, o1.previous_status) == ("o1", "None", "Partial")
    assert o1.lines == (LineChange("1", "X", 2, 0, 3),)
    # A new order: its previous values are None / 0.
    assert (o2.order_id, o2.status, o2.previous_status) == ("o2", "Full", "None")
    assert o2.lines == (LineChange("n1", "X", 3, 3, 0),)
    assert split.products == []  # X total stays 3


def test_order_split_moved_units_carry_the_backorder_first():
    """Engine choice (rules silent): the units split off carry the line's backorder first; what
    is left stays with the original. Seen on a frozen order, which the recalculation leaves
    alone: backorder 5 on qty 5, 2 moved out → 3 on qty 3 stays, and the new order's line is
    published with backorder 2 (not 0, which a frozen line would then keep for good)."""
    engine = Engine(BackorderSettings(max_days_to_be_back=5))
    feed(engine, created("o1", [("1", "X", 5)], date=day(1), time=day(1)))
    [split] = feed(engine, event("OrderSplit", {"order_id": "o1", "new_order_id": "o2",
                                                "lines": [{"line_id": "1", "qty": 2,
                                                           "new_line_id": "n1"}]}, time=day(30)))
    assert order_lines(engine, "o1") == {"1": 3}
    assert order_lines(engine, "o2") == {"n1": 2}
    assert split.orders[0].lines == (LineChange("1", "X", 3, 3, 5),)
    assert split.orders[1].lines == (LineChange("n1", "X", 2, 2, 0),)
    assert split.products == []  # 5 in total before and after


def test_order_split_of_a_partly_backordered_frozen_line_moves_the_backorder_with_the_units():
    """Engine choice: qty 5 with backorder 3, 2 units split off → the new line carries 2, the
    original keeps 1 on its 3 units; the frozen order keeps both."""
    engine = Engine(BackorderSettings(max_days_to_be_back=5))
    feed(engine, stock("X", 2, time=day(1)), created("o1", [("1", "X", 5)], date=day(1), time=day(1)))
    assert order_lines(engine, "o1") == {"1": 3}
    feed(engine, event("OrderSplit", {"order_id": "o1", "new_order_id": "o2",
                                      "lines": [{"line_id": "1", "qty": 2, "new_line_id": "n1"}]},
                       time=day(30)))
    assert order_lines(engine, "o1") == {"1": 1}
    assert order_lines(engine, "o2") == {"n1": 2}


def test_order_split_moving_a_whole_line_removes_it_from_the_original():
    """events.md: "a line moved whole leaves the original"; engine choice: the original is still
    published (a backordered line left it), listing only its remaining lines."""
    engine = Engine()
    feed(engine, created("o1", [("1", "X", 2), ("2", "Y", 1)]))
    [split] = feed(engine, event("OrderSplit", {"order_id": "o1", "new_order_id": "o2",
                                                "lines": [{"line_id": "2", "qty": 1,
                                                           "new_line_id": "n1"}]}))
    o1, o2 = split.orders
    assert o1.lines == (LineChange("1", "X", 2, 2, 2),)
    assert o2.lines == (LineChange("n1", "Y", 1, 1, 0),)
    assert published(engine) == {("o1", "1"): 2, ("o2", "n1"): 1}


# -- ItemAdded / ItemReplaced -----------------------------------------------------------------

def test_item_added_recalculates_only_the_new_lines_sku():
    """§8: ItemAdded recalculates "the new line's SKU". X dropped to 0 unrecalculated: the X line
    stays 0, the new Y line (no stock) is backordered 1 → Partial (1 of 3)."""
    engine = Engine()
    feed(engine, stock("X", 2), created("o1", [("1", "X", 2)]), stock("X", 0))
    [added] = feed(engine, event("ItemAdded", {"order_id": "o1",
                                               "line": {"line_id": "2", "sku": "Y", "qty": 1}}))
    [o1] = added.orders
    assert o1.status == "Partial"
    assert o1.lines == (LineChange("1", "X", 2, 0, 0), LineChange("2", "Y", 1, 1, 0))


def test_item_replaced_recalculates_the_old_and_the_new_sku():
    """§8: ItemReplaced recalculates "the old and the new SKU". o1 swaps its 2 X for Y (none on
    hand) → Y backorder 2; the 2 X it held go to o2 → 0."""
    engine = Engine()
    feed(engine, stock("X", 2),
         created("o1", [("1", "X", 2)], date=day(1)),
         created("o2", [("1", "X", 2)], date=day(2)))
    [replaced] = feed(engine, event("ItemReplaced", {"order_id": "o1", "line_id": "1",
                                                     "new_sku": "Y"}))
    o1, o2 = replaced.orders
    assert o1.lines == (LineChange("1", "Y", 2, 2, 0),)
    assert o2.lines == (LineChange("1", "X", 2, 0, 2),)
    assert [(p.sku, p.backorder_qty, p.previous_backorder_qty) for p in replaced.products] == [
        ("X", 0, 2), ("Y", 2, 0)]


def test_item_replaced_with_a_qty_changes_the_lines_qty():
    """events.md: ItemReplaced `qty` (null keeps the quantity): 3 of Y, none on hand → 3."""
    engine = Engine()
    feed(engine, stock("X", 2), created("o1", [("1", "X", 2)]),
         event("ItemReplaced", {"order_id": "o1", "line_id": "1", "new_sku": "Y", "qty": 3}))
    assert order_lines(engine, "o1") == {"1": 3}


# -- stock ------------------------------------------------------------------------------------

def test_po_received_recalculates_only_the_received_skus():
    """§8: POReceived recalculates "the received SKUs". Y's unrecalculated stock stays unseen."""
    engine = Engine()
    feed(engine, created("x", [("1", "X", 1)]), created("y", [("1", "Y", 1)]), stock("Y", 1))
    [received] = feed(engine, po("X", 1))
    assert [c.order_id for c in received.orders] == ["x"]
    assert (order_lines(engine, "x"), order_lines(engine, "y")) == ({"1": 0}, {"1": 1})


def test_inventory_adjusted_with_recalculate_true_recalculates_its_sku():
    """§8: InventoryAdjusted recalculates "its SKU, only when the event has recalculate: true"."""
    engine = Engine()
    feed(engine, created("o1", [("1", "X", 3)]))
    [adjusted] = feed(engine, event("InventoryAdjusted", {"sku": "X", "warehouse_id": "W1",
                                                          "delta": 2, "recalculate": True}))
    assert order_lines(engine, "o1") == {"1": 1}
    assert adjusted.orders[0].status == "Partial"


def test_inventory_adjusted_without_recalculate_publishes_nothing_until_a_later_recalculation():
    """§8: without recalculate: true nothing changes until the SKU is recalculated; seed: "you can
    force the recalculation ... instead of ... waiting for the BackOrderReCalculateService"."""
    engine = Engine()
    feed(engine, created("o1", [("1", "X", 3)]))
    [adjusted] = feed(engine, event("InventoryAdjusted", {"sku": "X", "warehouse_id": "W1",
                                                          "delta": 3}))
    assert (adjusted.orders, adjusted.products) == ([], [])
    assert order_lines(engine, "o1") == {"1": 3}
    [later] = feed(engine, recalc())
    assert order_lines(engine, "o1") == {"1": 0}
    assert later.orders[0].lines == (LineChange("1", "X", 3, 0, 3),)


# -- OrderStatusChanged -----------------------------------------------------------------------

def _two_orders_for_two(**settings) -> Engine:
    """2 on hand: older o1 (2) → 0, newer o2 (2) → 2."""
    engine = Engine(BackorderSettings(**settings))
    feed(engine, stock("X", 2),
         created("o1", [("1", "X", 2)], date=day(1)),
         created("o2", [("1", "X", 2)], date=day(2)))
    return engine


def test_order_status_change_recalculates_nothing_by_default():
    """§8: OrderStatusChanged recalculates "only when update_on_order_status_change" (default
    off): o1 goes OnHold, o2 stays backordered 2."""
    engine = _two_orders_for_two()
    [changed] = feed(engine, status("o1", order_status="OnHold"))
    assert changed.orders == []
    assert order_lines(engine, "o2") == {"1": 2}


def test_moving_into_on_hold_recalculates_with_update_on_order_status_change():
    """§8: with the setting, moving into OnHold recalculates the order's SKUs: o1 no longer
    counts (backorder 0) and its 2 go to o2 → 0."""
    engine = _two_orders_for_two(update_on_order_status_change=True)
    [changed] = feed(engine, status("o1", order_status="OnHold"))
    assert [c.order_id for c in changed.orders] == ["o2"]
    assert (order_lines(engine, "o1"), order_lines(engine, "o2")) == ({"1": 0}, {"1": 0})


def test_moving_out_of_quote_recalculates_with_update_on_order_status_change():
    """§8: "moved into or out of OnHold or Quote": Quote → InProcess with no stock → 2."""
    engine = Engine(BackorderSettings(update_on_order_status_change=True))
    feed(engine, created("o1", [("1", "X", 2)], order_status="Quote"))
    [changed] = feed(engine, status("o1", order_status="InProcess"))
    assert changed.orders[0].status == "Full"


@pytest.mark.parametrize("fields", [
    {"order_status": "Cancelled"},
    {"payment_status": "Refunded"},
    {"rush": True},
])
def test_other_status_changes_do_not_recalculate_even_with_the_setting(fields):
    """§8: only moves "into or out of OnHold or Quote" recalculate: o1 keeps backorder 2."""
    engine = Engine(BackorderSettings(update_on_order_status_change=True))
    feed(engine, created("o1", [("1", "X", 2)]))
    [changed] = feed(engine, status("o1", **fields))
    assert changed.orders == []
    assert order_lines(engine, "o1") == {"1": 2}


# -- RecalculateBackorders --------------------------------------------------------------------

def _stale() -> Engine:
    """o1 (X 2), o2 (Y 2), o3 (X 1) all backordered; then 3 X and 2 Y arrive unrecalculated."""
    engine = Engine()
    feed(engine, created("o1", [("1", "X", 2)]), created("o2", [("1", "Y", 2)]),
         created("o3", [("1", "X", 1)]), stock("X", 3), stock("Y", 2))
    return engine


def test_recalculate_backorders_for_listed_orders_recalculates_their_skus():
    """§8: "the SKUs of the listed orders": listing o1 recalculates X, so o3 (X) clears too."""
    engine = _stale()
    feed(engine, recalc(order_ids=["o1"]))
    assert published(engine) == {("o1", "1"): 0, ("o2", "1"): 2, ("o3", "1"): 0}


def test_recalculate_backorders_for_listed_skus():
    """§8: "and the listed SKUs"."""
    engine = _stale()
    feed(engine, recalc(skus=["Y"]))
    assert published(engine) == {("o1", "1"): 2, ("o2", "1"): 0, ("o3", "1"): 1}


def test_recalculate_backorders_with_nothing_listed_recalculates_everything():
    """§8: "all SKUs when it lists none"."""
    engine = _stale()
    feed(engine, recalc())
    assert published(engine) == {("o1", "1"): 0, ("o2", "1"): 0, ("o3", "1"): 0}


# -- events that recalculate nothing ----------------------------------------------------------

@pytest.mark.parametrize("raw, after_recalc", [
    (event("SettingsChanged", {"settings": {"exclude_dropship_qty": False}}), 0),
    (event("WarehouseUpserted", {"warehouse_id": "D", "type": "Sellable"}), 0),
    (event("ProductUpserted", {"sku": "X", "replacement_sku": "R"}), 0),
    (event("PurchaseOrderUpdated", {"po_id": "P9", "lines": [{"sku": "X", "qty_ordered": 5}]}), 2),
    (event("ContainerUpdated", {"container_id": "C1", "lines": [{"sku": "X", "qty": 5}]}), 2),
], ids=["settings", "warehouse", "product", "purchase-order", "container"])
def test_reference_data_events_recalculate_nothing(raw, after_recalc):
    """§8: "settings, warehouse, product, purchase-order and container events | none". 2 X sit in
    Dropship warehouse D, 2 R in W1; o1 wants 2 X. The event publishes nothing; only a later
    recalculation applies what it changed (PO and container data never feed allocation)."""
    engine = Engine(BackorderSettings(consider_replacement_sku_qty=True))
    feed(engine, event("WarehouseUpserted", {"warehouse_id": "D", "type": "Dropship"}),
         stock("X", 2, "D"), stock("R", 2, "W1"), created("o1", [("1", "X", 2)]))
    assert order_lines(engine, "o1") == {"1": 2}
    [outcome] = feed(engine, raw)
    assert (outcome.status, outcome.orders, outcome.products) == ("applied", [], [])
    assert order_lines(engine, "o1") == {"1": 2}
    feed(engine, recalc())
    assert order_lines(engine, "o1") == {"1": after_recalc}


# -- replacement SKUs -------------------------------------------------------------------------

@pytest.mark.parametrize("consider, backorder", [(True, 0), (False, 2)])
def test_recalculating_a_replacement_sku_recalculates_the_skus_it_replaces(consider, backorder):
    """§8: "With consider_replacement_sku_qty, recalculating a SKU also recalculates the SKUs
    whose replacement_sku it is": a PO of R clears the A order only with the setting."""
    engine = Engine(BackorderSettings(consider_replacement_sku_qty=consider))
    feed(engine, event("ProductUpserted", {"sku": "A", "replacement_sku": "R"}),
         created("o1", [("1", "A", 2)]))
    [received] = feed(engine, po("R", 2))
    assert order_lines(engine, "o1") == {"1": backorder}
    assert len(received.orders) == (1 if consider else 0)


# -- enable_backorder_workflow ----------------------------------------------------------------

def test_disabled_workflow_recalculates_and_publishes_nothing_manual_actions_included():
    """§8: "When enable_backorder_workflow is false nothing is recalculated and nothing is
    published, manual actions included." Re-enabling publishes nothing either; the next
    recalculation does (o1 backordered 2)."""
    engine = Engine(BackorderSettings(enable_backorder_workflow=False))
    outcomes = feed(engine, created("o1", [("1", "X", 2)]), po("Y", 1),
                    event("MarkBackorder", {"order_ids": ["o1"]}),
                    event("ReallocateBackorder", {"order_id": "o1",
                                                  "lines": [{"line_id": "1", "backorder_qty": 1}]}),
                    recalc(),
                    event("SettingsChanged", {"settings": {"enable_backorder_workflow": True}}))
    assert all(o.status == "applied" and o.orders == [] and o.products == [] for o in outcomes)
    assert order_lines(engine, "o1") == {"1": 0}
    [later] = feed(engine, recalc())
    assert order_lines(engine, "o1") == {"1": 2}
    assert later.orders[0].status == "Full"


def test_disabled_workflow_leaves_published_values_alone_so_later_previous_values_are_true():
    """§8: "The published backorder quantities change only when the line's SKU is recalculated, or
    by a manual action" and, with the workflow off, "nothing is recalculated and nothing is
    published"; §9 previous values are what was last published. o1 was published 5; while off,
    its line shrinks to 2; once on again, 2 arrive: 5 → 0 for the line and the SKU total."""
    engine = Engine()
    feed(engine, created("o1", [("1", "X", 5)]),
         event("SettingsChanged", {"settings": {"enable_backorder_workflow": False}}),
         event("ItemReplaced", {"order_id": "o1", "line_id": "1", "new_sku": "X", "qty": 2}),
         event("SettingsChanged", {"settings": {"enable_backorder_workflow": True}}))
    [later] = feed(engine, stock("X", 2, recalculate=True))
    assert later.orders[0].lines == (LineChange("1", "X", 2, 0, 5),)
    assert [(p.backorder_qty, p.previous_backorder_qty) for p in later.products] == [(0, 5)]
