"""Incoming supply and its two dates: the earliest open PO (or container), and the first
whose cumulative open quantity exceeds the SKU's current backorders."""

from __future__ import annotations

import itertools
from datetime import date

from channel_sync.domain.projection import EVERY_SKU, Projection
from channel_sync.domain.supply import Incoming, incoming, on_order
from hypothesis import given
from hypothesis import strategies as st
from support import parsed

MAY = lambda day: date(2025, 5, day)  # noqa: E731
_ids = itertools.count(1)


def ev(type_: str, data: dict, id: str | None = None, time: str = "2025-04-30T08:00:00Z"):
    raw = {"specversion": "1.0", "id": id or f"{type_}-{next(_ids)}", "source": "/t",
           "type": type_, "time": time, "data": data}
    return parsed(raw)


def po(po_id: str, *lines: tuple, time: str = "2025-04-30T08:00:00Z") -> object:
    return ev("PurchaseOrderUpdated", {"po_id": po_id, "lines": [
        {"sku": sku, "qty_ordered": ordered, "qty_received": received, "estimated_delivery_date": eta}
        for sku, ordered, received, eta in lines]}, time=time)


def receipt(po_id: str, id: str, time: str, **qty: int) -> object:
    return ev("POReceived", {"po_id": po_id, "warehouse_id": "W",
                             "lines": [{"sku": s, "qty": q} for s, q in qty.items()]}, id=id, time=time)


def container(container_id: str, eta: str | None, **qty: int) -> object:
    return ev("ContainerUpdated", {"container_id": container_id, "estimated_arrival_date": eta,
                                   "lines": [{"sku": s, "qty": q} for s, q in qty.items()]})


def test_first_po_whose_cumulative_open_quantity_exceeds_the_backorders():
    p = Projection()
    p.apply(po("PO-A", ("X", 10, 0, "2025-05-05")))
    p.apply(po("PO-B", ("X", 5, 0, "2025-05-01")))
    supply = incoming(p, "X")
    assert [s.source for s in supply] == ["PO-B", "PO-A"]  # soonest first
    # 4 units promised: the first PO (5) already has one for a new buyer.
    assert on_order(supply, 4).next_available == MAY(1)
    # 5 promised: PO-B is all taken, a new buyer waits for PO-A.
    assert on_order(supply, 5).next_available == MAY(5)
    # 15 promised: everything on order is taken.
    assert on_order(supply, 15).next_available is None
    result = on_order(supply, 0)
    assert (result.qty, result.earliest_eta, result.next_available) == (15, MAY(1), MAY(1))


def test_received_units_are_no_longer_on_order():
    p = Projection()
    p.apply(po("PO-1", ("X", 10, 4, "2025-05-03"), ("Y", 3, 3, "2025-05-03")))
    assert [(s.qty, s.eta) for s in incoming(p, "X")] == [(6, MAY(3))]
    assert incoming(p, "Y") == []  # fully received


def test_a_receipt_lowers_the_open_quantity_once_per_event_id():
    p = Projection()
    p.apply(po("PO-1", ("X", 10, 0, "2025-05-03")))
    first = receipt("PO-1", "r-1", "2025-04-30T09:00:00Z", X=4)
    assert p.apply(first) == {"X"}
    assert p.apply(first) == frozenset()  # the same receipt again: a duplicate
    assert incoming(p, "X")[0].qty == 6
    # A receipt for a PO the feeds never heard of changes nothing (yet).
    other = receipt("PO-9", "r-2", "2025-04-30T09:00:00Z", X=4)
    assert p.apply(other) == frozenset()
    # The next update is the PO's full state: it replaces what earlier receipts did.
    p.apply(po("PO-1", ("X", 10, 5, "2025-05-03"), time="2025-04-30T10:00:00Z"))
    assert incoming(p, "X")[0].qty == 5


def test_receipts_and_updates_out_of_order_count_each_receipt_once():
    """The records of one PO can come on different partitions: an update older than the one
    held is ignored, and a receipt counts only when later than the update held."""
    p = Projection()
    p.apply(po("PO-1", ("X", 10, 4, "2025-05-03"), time="2025-04-30T10:00:00Z"))  # includes r-1's 4
    # r-1 (09:00) arrives after the 10:00 update that already counts it: nothing changes.
    assert p.apply(receipt("PO-1", "r-1", "2025-04-30T09:00:00Z", X=4)) == frozenset()
    assert incoming(p, "X")[0].qty == 6
    # An update older than the one held (08:00, nothing received yet) is ignored.
    assert p.apply(po("PO-1", ("X", 10, 0, "2025-05-03"), time="2025-04-30T08:00:00Z")) == frozenset()
    assert incoming(p, "X")[0].qty == 6
    # A later receipt counts, and is applied again over a newer update older than itself.
    assert p.apply(receipt("PO-1", "r-2", "2025-04-30T12:00:00Z", X=2)) == {"X"}
    assert incoming(p, "X")[0].qty == 4
    p.apply(po("PO-1", ("X", 10, 5, "2025-05-03"), time="2025-04-30T11:00:00Z"))  # r-2 not in it
    assert incoming(p, "X")[0].qty == 3
    # A receipt for a PO not heard of yet waits for it, and counts when later than it.
    p.apply(receipt("PO-2", "r-3", "2025-04-30T12:00:00Z", X=1))
    p.apply(po("PO-2", ("X", 5, 0, "2025-05-04"), time="2025-04-30T11:00:00Z"))
    assert [(s.source, s.qty) for s in incoming(p, "X")] == [("PO-1", 3), ("PO-2", 4)]


def test_an_update_that_drops_a_sku_touches_it_and_takes_it_off_order():
    p = Projection()
    p.apply(po("PO-1", ("X", 10, 0, None), ("Y", 2, 0, None)))
    assert p.apply(po("PO-1", ("X", 8, 0, None))) == {"X", "Y"}
    assert incoming(p, "Y") == []


def test_undated_supply_counts_but_gives_no_date():
    supply = [Incoming("PO-1", 3, MAY(2)), Incoming("PO-2", 4, None)]
    assert on_order(supply, 0).next_available == MAY(2)
    assert on_order(supply, 3).next_available is None  # the crossing PO has no date
    assert on_order(supply, 3).earliest_eta == MAY(2)
    assert on_order(supply, 3).qty == 7


def test_with_the_container_setting_containers_replace_purchase_orders():
    p = Projection()
    p.apply(po("PO-1", ("X", 10, 0, "2025-05-03")))
    p.apply(container("MSCU1", "2025-05-20", X=24, Y=12))
    assert [s.source for s in incoming(p, "X")] == ["PO-1"]
    on = ev("SettingsChanged", {"settings": {"use_shipping_containers_for_po": True}})
    assert p.apply(on) is EVERY_SKU
    assert [(s.source, s.qty, s.eta) for s in incoming(p, "X")] == [("MSCU1", 24, MAY(20))]
    # An updated container replaces its lines: what arrived is no longer on the way.
    assert p.apply(container("MSCU1", "2025-05-22", Y=6)) == {"X", "Y"}
    assert incoming(p, "X") == []
    assert [(s.qty, s.eta) for s in incoming(p, "Y")] == [(6, MAY(22))]


def test_a_setting_that_does_not_change_touches_nothing():
    p = Projection()
    same = ev("SettingsChanged", {"settings": {"use_shipping_containers_for_po": False, "prioritize_rush": True}})
    assert p.apply(same) == frozenset()


supplies = st.lists(
    st.builds(Incoming, st.sampled_from(["a", "b", "c", "d"]), st.integers(1, 20),
              st.one_of(st.none(), st.dates(date(2025, 5, 1), date(2025, 5, 10)))),
    max_size=6,
)


@given(supplies, st.integers(0, 60))
def test_next_available_is_the_date_at_which_supply_first_exceeds_the_backorders(items, backorder):
    items = sorted(items, key=lambda s: (s.eta is None, s.eta or date.min, s.source))
    result = on_order(items, backorder)
    dated = [s for s in items if s.eta is not None]
    assert result.qty == sum(s.qty for s in items)
    assert result.earliest_eta == (min(s.eta for s in dated) if dated else None)
    if result.next_available is None:
        # Everything dated is already promised (the crossing supply, if any, is undated).
        assert sum(s.qty for s in dated) <= backorder
    else:
        d = result.next_available
        assert sum(s.qty for s in dated if s.eta <= d) > backorder
        assert sum(s.qty for s in dated if s.eta < d) <= backorder
