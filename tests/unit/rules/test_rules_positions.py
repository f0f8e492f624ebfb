"""SkuPositionChanged: a SKU's available quantity (supply no line holds) and its total
published backorder, published when either changes (docs/behaviour.md, "Positions")."""

from __future__ import annotations

from datetime import UTC, datetime

from backorder_events import BackorderSettings, SkuPositionChanged
from recalculator.domain.engine import Engine
from recalculator.domain.results import SkuPositionChange
from recalculator.publishing import output_events
from support import created, event, feed, stock


def recalc(*skus: str, time: str = "2025-04-30T15:19:00Z") -> dict:
    return event("RecalculateBackorders", {"skus": list(skus)}, time=time)


def recalc_all(time: str = "2025-04-30T15:19:00Z") -> dict:
    return event("RecalculateBackorders", {}, time=time)


def test_an_order_publishes_the_position_of_its_sku_after_products():
    """5 on hand, an order for 2: 3 left to sell, nothing backordered."""
    engine = Engine()
    _, made = feed(engine, stock("X", 5), created("o1", [("1", "X", 2)]))
    assert made.positions == [SkuPositionChange("X", 3, 0, 0, 0)]


def test_backordered_units_leave_nothing_available():
    engine = Engine()
    _, made = feed(engine, stock("X", 1), created("o1", [("1", "X", 3)]))
    assert made.positions == [SkuPositionChange("X", 0, 2, 0, 0)]
    [more] = feed(engine, created("o2", [("1", "X", 1)]))
    assert more.positions == [SkuPositionChange("X", 0, 3, 0, 2)]


def test_nothing_is_published_when_neither_value_changed():
    engine = Engine()
    feed(engine, stock("X", 5), created("o1", [("1", "X", 2)]))
    [again] = feed(engine, recalc_all())
    assert again.positions == []


def test_a_stock_change_waits_for_the_recalculation_like_the_backorders():
    """Available is the allocation's figure: it moves when the SKU is recalculated (§8)."""
    engine = Engine()
    feed(engine, stock("X", 5), created("o1", [("1", "X", 2)]))
    [quiet] = feed(engine, stock("X", 9))  # recalculate: false
    assert quiet.positions == []
    [recalculated] = feed(engine, recalc("X"))
    assert recalculated.positions == [SkuPositionChange("X", 7, 0, 3, 0)]


def test_a_manual_action_moves_the_backorder_and_keeps_the_available():
    """MarkBackorder changes the published total without a recalculation: the position
    follows the total; available stays what the last recalculation gave."""
    engine = Engine()
    feed(engine, stock("X", 5), created("o1", [("1", "X", 2)]))
    [marked] = feed(engine, event("MarkBackorder", {"order_ids": ["o1"]}))
    assert marked.positions == [SkuPositionChange("X", 3, 2, 3, 0)]
    [back] = feed(engine, recalc("X"))
    assert back.positions == [SkuPositionChange("X", 3, 0, 3, 2)]


def test_frozen_lines_hold_their_allocation_before_anyone_else():
    """§4: a frozen line keeps its published backorder and holds qty - backorder."""
    engine = Engine(BackorderSettings(max_days_to_be_back=5))
    feed(engine, stock("X", 10))
    [old] = feed(engine, created("old", [("1", "X", 3)], date="2025-04-01T00:00:00Z"))
    # Frozen at once (29 days old): it keeps its backorder 0 and so holds 3 of the 10.
    assert old.positions == [SkuPositionChange("X", 7, 0, 0, 0)]
    [made] = feed(engine, stock("X", 1), created("new", [("1", "X", 2)]))[1:]
    # 1 on hand: the frozen line takes it first, the new line is short 2, nothing is left.
    assert made.positions == [SkuPositionChange("X", 0, 2, 7, 0)]


def test_warehouse_mode_sums_the_pools_and_leaves_out_stock_sold_elsewhere():
    engine = Engine(BackorderSettings(warehouse_based=True, default_warehouse_id="W1"))
    feed(engine,
         event("WarehouseUpserted", {"warehouse_id": "FBA1", "type": "FBA"}),
         event("WarehouseUpserted", {"warehouse_id": "D1", "type": "Dropship"}),
         stock("X", 4, "W1"), stock("X", 6, "W2"), stock("X", 50, "FBA1"), stock("X", 7, "D1"))
    [made] = feed(engine, created("o1", [("1", "X", 3)]))
    # W1: 4 - 3; W2: 6; FBA and dropship stock is not available to these orders.
    assert made.positions == [SkuPositionChange("X", 7, 0, 0, 0)]


def test_default_mode_leaves_out_dropship_and_unsellable_stock():
    engine = Engine()
    feed(engine,
         event("WarehouseUpserted", {"warehouse_id": "D1", "type": "Dropship"}),
         event("WarehouseUpserted", {"warehouse_id": "R1", "type": "Unsellable"}),
         stock("X", 2, "W1"), stock("X", 7, "D1"), stock("X", 9, "R1"))
    [made] = feed(engine, recalc("X"))
    assert made.positions == [SkuPositionChange("X", 2, 0, 0, 0)]


def test_a_replacement_skus_available_is_less_what_short_lines_draw_on_it():
    """§6: A's short line draws on its replacement B's leftover; B has that much less to sell."""
    engine = Engine(BackorderSettings(consider_replacement_sku_qty=True))
    feed(engine,
         event("ProductUpserted", {"sku": "A", "replacement_sku": "B"}),
         stock("A", 1), stock("B", 10))
    [made] = feed(engine, created("o1", [("1", "A", 4)]))
    # A: 1 on hand for 4 → short 3, drawn from B, so A's backorder is 0. B was not
    # recalculated: its position waits for its own recalculation, like its backorders.
    assert made.positions == [SkuPositionChange("A", 0, 0, 0, 0)]
    [later] = feed(engine, recalc("B"))  # recalculates A too (§8), which is unchanged
    assert later.positions == [SkuPositionChange("B", 7, 0, 0, 0)]


def test_the_full_recalculation_covers_skus_that_are_only_stocked():
    engine = Engine()
    feed(engine, stock("Y", 6), stock("Z", 0))
    [made] = feed(engine, recalc_all())
    # Z's first position is published even at (0, 0): channels learn the SKU exists.
    assert made.positions == [SkuPositionChange("Y", 6, 0, 0, 0), SkuPositionChange("Z", 0, 0, 0, 0)]


def test_a_sku_nothing_ever_mentioned_gets_no_position():
    [made] = feed(Engine(), recalc("NO-SUCH-SKU"))
    assert made.positions == []


def test_nothing_is_published_while_the_workflow_is_off_and_previous_is_the_last_published():
    engine = Engine()
    feed(engine, stock("X", 5), created("o1", [("1", "X", 2)]))  # (3, 0)
    off = event("SettingsChanged", {"settings": {"enable_backorder_workflow": False}})
    on = event("SettingsChanged", {"settings": {"enable_backorder_workflow": True}})
    [_, during] = feed(engine, off, created("o2", [("1", "X", 6)]))
    assert during.positions == []
    [_, after] = feed(engine, on, recalc("X"))
    assert after.positions == [SkuPositionChange("X", 0, 3, 3, 0)]


def test_position_events_are_valid_ordered_by_sku_and_have_stable_ids():
    log = [stock("B", 1), stock("A", 1), created("o1", [("1", "B", 2), ("2", "A", 1)], id="c-1")]
    runs = []
    for engine in (Engine(), Engine()):
        outcome = feed(engine, *log)[-1]
        runs.append(output_events(outcome, "c-1", datetime(2025, 4, 30, tzinfo=UTC)))
    assert runs[0] == runs[1]
    types = [(e["type"], e["subject"]) for e in runs[0]]
    assert types == [("BackorderChanged", "o1"), ("ProductBackorderChanged", "B"),
                     ("SkuPositionChanged", "A"), ("SkuPositionChanged", "B")]
    events = [SkuPositionChanged.model_validate(e) for e in runs[0][2:]]
    assert [(e.data.available_qty, e.data.backorder_qty) for e in events] == [(0, 0), (0, 1)]
    assert len({e["id"] for e in runs[0]}) == 4
