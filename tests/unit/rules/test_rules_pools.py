"""Rules §3: pools and their supply, in the default and the warehouse-based mode."""

from __future__ import annotations

import pytest
from backorder_events import BackorderSettings
from recalculator.domain.engine import Engine
from support import created, event, feed, order_lines, stock


def warehouse(warehouse_id: str, kind: str) -> dict:
    return event("WarehouseUpserted", {"warehouse_id": warehouse_id, "type": kind})


def po(sku: str, qty: int, warehouse_id: str) -> dict:
    return event("POReceived", {"po_id": "PO-1", "warehouse_id": warehouse_id,
                                "lines": [{"sku": sku, "qty": qty}]})


# -- default mode: one pool per SKU ---------------------------------------------------------------

def test_default_mode_supply_is_the_sum_over_warehouses():
    """§3: "Default mode: one pool per sku. Its supply is the sum of physical quantity over the
    SKU's warehouses". 2 + 3 on hand for 6 ordered → backorder 1."""
    engine = Engine()
    feed(engine, stock("X", 2, "W1"), stock("X", 3, "W2"), created("o1", [("1", "X", 6)]))
    assert order_lines(engine, "o1") == {"1": 1}


@pytest.mark.parametrize("kind", ["Dropship", "Unsellable"])
def test_excluded_warehouse_types_are_left_out_by_default(kind):
    """§3: "leaving out Dropship warehouses when exclude_dropship_qty and Unsellable warehouses
    when exclude_unsellable_qty" (both default on). 1 sellable + 4 excluded for 5 → 4."""
    engine = Engine()
    feed(engine, warehouse("D", kind), stock("X", 1, "W1"), stock("X", 4, "D"),
         created("o1", [("1", "X", 5)]))
    assert order_lines(engine, "o1") == {"1": 4}


@pytest.mark.parametrize("kind, setting", [
    ("Dropship", "exclude_dropship_qty"),
    ("Unsellable", "exclude_unsellable_qty"),
])
def test_excluded_warehouse_types_count_when_their_setting_is_off(kind, setting):
    """§3 with the setting off: 1 + 4 on hand for 5 → backorder 0."""
    engine = Engine(BackorderSettings(**{setting: False}))
    feed(engine, warehouse("D", kind), stock("X", 1, "W1"), stock("X", 4, "D"),
         created("o1", [("1", "X", 5)]))
    assert order_lines(engine, "o1") == {"1": 0}


def test_negative_stock_floors_the_pool_at_zero():
    """§3: "then max(0, sum)". -3 on hand for 2 ordered → backorder 2, never more than qty."""
    engine = Engine()
    _, made = feed(engine, stock("X", -3), created("o1", [("1", "X", 2)]))
    assert order_lines(engine, "o1") == {"1": 2}
    assert made.products[0].backorder_qty == 2


def test_a_negative_warehouse_offsets_a_positive_one_before_the_floor():
    """§3: the sum is taken first, then floored: -3 + 5 = 2 for 5 ordered → backorder 3."""
    engine = Engine()
    feed(engine, stock("X", -3, "W1"), stock("X", 5, "W2"), created("o1", [("1", "X", 5)]))
    assert order_lines(engine, "o1") == {"1": 3}


def test_an_excluded_negative_warehouse_does_not_offset_anything():
    """§3: a Dropship warehouse is left out of the sum entirely, negative or not: 5 for 5."""
    engine = Engine()
    feed(engine, warehouse("D", "Dropship"), stock("X", -3, "D"), stock("X", 5, "W1"),
         created("o1", [("1", "X", 5)]))
    assert order_lines(engine, "o1") == {"1": 0}


# -- warehouse-based mode: one pool per (SKU, warehouse) ----------------------------------------

def wh_engine(**settings) -> Engine:
    return Engine(BackorderSettings(warehouse_based=True, **settings))


def test_warehouse_mode_has_one_pool_per_warehouse():
    """§3: "Warehouse-based mode: one pool per (sku, warehouse_id); supply is that warehouse's
    quantity". W1 has 5, W2 none: the W2 order is backordered 3 although the SKU has 5."""
    engine = wh_engine()
    feed(engine, stock("X", 5, "W1"),
         created("w2", [("1", "X", 3)], ship_from_warehouse_id="W2"),
         created("w1", [("1", "X", 3)], ship_from_warehouse_id="W1"))
    assert order_lines(engine, "w2") == {"1": 3}
    assert order_lines(engine, "w1") == {"1": 0}


def test_warehouse_mode_ship_from_wins_over_default_warehouse():
    """§3: "An order draws from the pool of its ship_from_warehouse_id, else of
    default_warehouse_id". Ship from W1 (5 on hand), default W2 (empty) → backorder 0."""
    engine = wh_engine(default_warehouse_id="W2")
    feed(engine, stock("X", 5, "W1"),
         created("o1", [("1", "X", 3)], ship_from_warehouse_id="W1"))
    assert order_lines(engine, "o1") == {"1": 0}


def test_warehouse_mode_default_warehouse_serves_orders_without_ship_from():
    """§3: without a ship-from the order draws on default_warehouse_id (W2: 1 of 3)."""
    engine = wh_engine(default_warehouse_id="W2")
    feed(engine, stock("X", 5, "W1"), stock("X", 1, "W2"), created("o1", [("1", "X", 3)]))
    assert order_lines(engine, "o1") == {"1": 2}


def test_warehouse_mode_order_with_no_warehouse_is_not_calculated():
    """§3: "with neither ... the order is not calculated": backorder 0 with no stock at all."""
    engine = wh_engine()
    [made] = feed(engine, created("o1", [("1", "X", 3)]))
    assert order_lines(engine, "o1") == {"1": 0}
    assert made.orders == []


@pytest.mark.parametrize("kind", ["FBA", "Interim", "Untested"])
def test_warehouse_mode_fba_interim_untested_warehouses_are_not_calculated(kind):
    """§3: "when that warehouse's type is FBA, Interim or Untested, the order is not
    calculated" (seed: "This will not do the calculation for FBA, Interim, or Untested")."""
    engine = wh_engine(default_warehouse_id="F2")
    feed(engine, warehouse("F", kind), warehouse("F2", kind),
         created("ship", [("1", "X", 3)], ship_from_warehouse_id="F"),
         created("default", [("1", "X", 3)]))
    assert order_lines(engine, "ship") == {"1": 0}
    assert order_lines(engine, "default") == {"1": 0}


def test_warehouse_mode_excluded_type_has_zero_supply_unless_its_setting_is_off():
    """§3: "supply is that warehouse's quantity (0 where its type is excluded by the two
    settings above)". Shipping from a Dropship warehouse with 5 on hand, ordering 3."""
    for settings, backorder in (({}, 3), ({"exclude_dropship_qty": False}, 0)):
        engine = wh_engine(**settings)
        feed(engine, warehouse("D", "Dropship"), stock("X", 5, "D"),
             created("o1", [("1", "X", 3)], ship_from_warehouse_id="D"))
        assert order_lines(engine, "o1") == {"1": backorder}


def test_warehouse_mode_negative_warehouse_floors_at_zero_and_offsets_nothing():
    """§3: "supply is that warehouse's quantity ... then max(0, qty)". W1 at -3 does not reduce
    W2's 5, and the W1 order is backordered its qty 1, not 4."""
    engine = wh_engine()
    feed(engine, stock("X", -3, "W1"), stock("X", 5, "W2"),
         created("w1", [("1", "X", 1)], ship_from_warehouse_id="W1"),
         created("w2", [("1", "X", 5)], ship_from_warehouse_id="W2"))
    assert order_lines(engine, "w1") == {"1": 1}
    assert order_lines(engine, "w2") == {"1": 0}


def test_warehouse_mode_stock_arriving_in_one_warehouse_serves_only_its_orders():
    """§3: per-warehouse pools: a PO received into W1 clears the W1 order; the older W2 order
    stays backordered."""
    engine = wh_engine()
    feed(engine,
         created("w2", [("1", "X", 2)], ship_from_warehouse_id="W2", date="2025-04-01T10:00:00Z"),
         created("w1", [("1", "X", 2)], ship_from_warehouse_id="W1", date="2025-04-02T10:00:00Z"),
         po("X", 2, "W1"))
    assert order_lines(engine, "w1") == {"1": 0}
    assert order_lines(engine, "w2") == {"1": 2}
