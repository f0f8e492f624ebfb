"""docs/behaviour.md, "Expected date per line": each backordered line's date from the queue
and the supply on its way, computed by hand."""

from __future__ import annotations

from backorder_events import BackorderSettings
from recalculator.domain.engine import Engine
from recalculator.domain.model import to_us
from recalculator.publishing import order_event
from support import created, event, feed, parsed

from backorder_events.outputs import BackorderChanged

MAY = {n: f"2025-05-{n:02d}" for n in range(1, 32)}


def us(day: int) -> int:
    return to_us(parsed(event("OrderCreated", {
        "order_id": "x", "order_date": f"{MAY[day]}T00:00:00Z", "lines": [{"line_id": "1", "sku": "X", "qty": 1}],
    })).data.order_date)


def day(n: int) -> str:
    return f"2025-04-{n:02d}T10:00:00Z"


def po(po_id: str, *lines: tuple[str, int, int | None, int], time: str = "2025-04-30T15:19:00Z") -> dict:
    """lines: (sku, qty_ordered, delivery day of May or None, qty_received)."""
    return event("PurchaseOrderUpdated", {"po_id": po_id, "lines": [
        {"sku": sku, "qty_ordered": ordered, "qty_received": received,
         "estimated_delivery_date": MAY[eta] if eta else None}
        for sku, ordered, eta, received in lines
    ]}, time=time)


def received(po_id: str, sku: str, qty: int, time: str = "2025-04-30T16:00:00Z") -> dict:
    return event("POReceived", {"po_id": po_id, "warehouse_id": "W1",
                                "lines": [{"sku": sku, "qty": qty}]}, time=time)


def container(container_id: str, eta: int | None, *lines: tuple[str, int]) -> dict:
    return event("ContainerUpdated", {
        "container_id": container_id, "estimated_arrival_date": MAY[eta] if eta else None,
        "lines": [{"sku": sku, "qty": qty} for sku, qty in lines],
    })


def settings(**values) -> dict:
    return event("SettingsChanged", {"settings": values})


def dates(engine: Engine, order_id: str) -> dict[str, int | None]:
    return {lid: engine.expected_date(line) for lid, line in engine.orders[order_id].lines.items()}


def queue(engine: Engine) -> None:
    """o1 (5), o2 (3), o3 (4) of X, oldest first, nothing in stock: all backordered."""
    feed(engine, created("o1", [("1", "X", 5)], date=day(1)),
         created("o2", [("1", "X", 3)], date=day(2)),
         created("o3", [("1", "X", 4)], date=day(3)))


def test_several_pos_cover_the_queue_in_priority_order():
    """PO-A brings 6 on May 10, PO-B 4 on May 20: o1's 5 units in A (10th); o2's units 6..8
    end in B (20th); o3's 9..12 go past the 10 on order: none."""
    engine = Engine()
    queue(engine)
    feed(engine, po("A", ("X", 6, 10, 0)), po("B", ("X", 4, 20, 0)))
    assert dates(engine, "o1") == {"1": us(10)}
    assert dates(engine, "o2") == {"1": us(20)}
    assert dates(engine, "o3") == {"1": None}


def test_a_partly_covered_line_takes_the_date_of_its_last_unit():
    """o1 needs 5: PO-A's 3 (May 10) and 2 of PO-B's (May 20): the 20th. A line whose last
    unit nothing covers has no date, even when its first units are covered (o2)."""
    engine = Engine()
    queue(engine)
    feed(engine, po("A", ("X", 3, 10, 0)), po("B", ("X", 3, 20, 0)))
    assert dates(engine, "o1") == {"1": us(20)}
    assert dates(engine, "o2") == {"1": None}


def test_a_line_partly_in_stock_waits_only_for_its_backorder():
    """2 on hand go to o1, whose backorder is 3: PO-A's 3 (May 10) cover it; o2 waits for PO-B."""
    engine = Engine()
    feed(engine, event("InventoryAdjusted", {"sku": "X", "warehouse_id": "W1", "set_to": 2}))
    queue(engine)
    feed(engine, po("A", ("X", 3, 10, 0)), po("B", ("X", 3, 20, 0)))
    assert dates(engine, "o1") == {"1": us(10)}
    assert dates(engine, "o2") == {"1": us(20)}


def test_ties_in_priority_go_by_order_id_then_line_id():
    """Same order date: o-a's lines 1 and 2 (2 each) before o-b's (2): PO of 4 on May 10, then
    2 on May 12."""
    engine = Engine()
    feed(engine, created("o-b", [("1", "X", 2)], date=day(1)),
         created("o-a", [("2", "X", 2), ("1", "X", 2)], date=day(1)),
         po("A", ("X", 4, 10, 0), ("X", 2, 12, 0)))
    assert dates(engine, "o-a") == {"2": us(10), "1": us(10)}
    assert dates(engine, "o-b") == {"1": us(12)}


def test_a_po_moved_later_moves_the_lines_it_covers():
    engine = Engine()
    queue(engine)
    feed(engine, po("A", ("X", 5, 10, 0)), po("B", ("X", 7, 20, 0)))
    assert (dates(engine, "o1"), dates(engine, "o3")) == ({"1": us(10)}, {"1": us(20)})
    feed(engine, po("A", ("X", 5, 25, 0), time="2025-04-30T17:00:00Z"))
    # B (20th) now comes first: its 7 cover o1 (5) and 2 of o2; A's 5 the rest.
    assert dates(engine, "o1") == {"1": us(20)}
    assert dates(engine, "o2") == {"1": us(25)}
    assert dates(engine, "o3") == {"1": us(25)}


def test_a_receipt_lowers_the_po_and_the_backorders_alike():
    """5 of PO-A received: stock 5 goes to o1, and what is open of A is 1: o2's 3 units are
    A's last one (10th) and 2 of B's (20th)."""
    engine = Engine()
    queue(engine)
    feed(engine, po("A", ("X", 6, 10, 0)), po("B", ("X", 6, 20, 0)), received("A", "X", 5))
    assert dates(engine, "o1") == {"1": None}  # not backordered any more
    assert engine.orders["o1"].lines["1"].published == 0
    assert dates(engine, "o2") == {"1": us(20)}
    assert dates(engine, "o3") == {"1": us(20)}


def test_a_receipt_not_later_than_the_update_is_in_its_qty_received():
    engine = Engine()
    queue(engine)
    feed(engine, po("A", ("X", 8, 10, 3), time="2025-04-30T16:00:00Z"),
         received("A", "X", 3, time="2025-04-30T16:00:00Z"))
    # open 5 on the 10th (the receipt of the same instant is in qty_received); stock 3 → o1 2.
    assert engine.orders["o1"].lines["1"].published == 2
    assert dates(engine, "o1") == {"1": us(10)}
    assert dates(engine, "o2") == {"1": us(10)}
    assert dates(engine, "o3") == {"1": None}


def test_the_containers_switch_uses_containers_instead_of_pos():
    engine = Engine()
    queue(engine)
    feed(engine, po("A", ("X", 12, 10, 0)), container("C1", 15, ("X", 8)), container("C2", 28, ("X", 4)))
    assert [dates(engine, o)["1"] for o in ("o1", "o2", "o3")] == [us(10)] * 3
    feed(engine, settings(use_shipping_containers_for_po=True))
    assert [dates(engine, o)["1"] for o in ("o1", "o2", "o3")] == [us(15), us(15), us(28)]


def test_supply_without_a_date_tells_no_date():
    engine = Engine()
    queue(engine)
    feed(engine, po("A", ("X", 5, None, 0)), po("B", ("X", 5, 20, 0)))
    # Undated supply counts after every dated arrival: B's 5 cover o1; nothing dated is left.
    assert dates(engine, "o1") == {"1": us(20)}
    assert dates(engine, "o2") == {"1": None}


def test_frozen_and_manual_lines_wait_with_their_published_backorder():
    """A frozen line keeps its published backorder and waits with it in its place; a manual
    value waits as set. o1 frozen at 5, o2 marked not backordered, o3 (4): PO of 6 on the
    10th covers o1 and 1 of o3, so o3 waits for the 20th."""
    engine = Engine(BackorderSettings(max_days_to_be_back=10))
    later = "2025-05-10T10:00:00Z"  # o1 is more than 10 days old by then: frozen at 5
    feed(engine, created("o1", [("1", "X", 5)], date="2025-04-25T10:00:00Z", time=day(25)),
         created("o2", [("1", "X", 3)], date="2025-05-05T10:00:00Z", time=later),
         created("o3", [("1", "X", 4)], date="2025-05-06T10:00:00Z", time=later),
         event("MarkNotBackorder", {"order_ids": ["o2"]}),
         po("A", ("X", 6, 10, 0)), po("B", ("X", 6, 20, 0)))
    assert engine.orders["o1"].lines["1"].frozen
    assert dates(engine, "o1") == {"1": us(10)}
    assert dates(engine, "o2") == {"1": None}
    assert dates(engine, "o3") == {"1": us(20)}


def test_a_line_not_calculated_gets_no_date_and_takes_no_supply():
    engine = Engine()
    queue(engine)
    feed(engine, po("A", ("X", 5, 10, 0)), po("B", ("X", 10, 20, 0)),
         event("MarkBackorder", {"order_ids": ["o1"]}),
         event("OrderStatusChanged", {"order_id": "o1", "order_status": "OnHold"}))
    # o1 is no longer calculated: its published 5 (manual) waits for nothing.
    assert dates(engine, "o1") == {"1": None}
    assert dates(engine, "o2") == {"1": us(10)}
    assert dates(engine, "o3") == {"1": us(20)}


def test_backorder_changed_carries_the_dates_and_older_readers_still_parse():
    engine = Engine()
    feed(engine, po("A", ("X", 9, 10, 0)))
    [made] = feed(engine, created("o1", [("1", "X", 5)], date=day(1)))
    body = order_event(made.orders[0], "2025-04-30T15:19:00Z")
    line = BackorderChanged.model_validate(body).data.lines[0]
    assert (line.expected_date.day, line.previous_expected_date) == (10, None)


def test_a_date_change_alone_publishes_only_when_the_setting_asks():
    engine = Engine()
    queue(engine)
    feed(engine, po("A", ("X", 12, 10, 0)))
    [moved] = feed(engine, po("A", ("X", 12, 15, 0), time="2025-04-30T17:00:00Z"))
    assert moved.orders == []
    feed(engine, settings(publish_expected_date_changes=True))
    [moved] = feed(engine, po("A", ("X", 12, 18, 0), time="2025-04-30T18:00:00Z"))
    assert [c.order_id for c in moved.orders] == ["o1", "o2", "o3"]
    first = moved.orders[0].lines[0]
    # o1 was last published when it was created, before any PO: previous None.
    assert (first.expected_date, first.previous_expected_date) == (us(18), None)
    [again] = feed(engine, po("A", ("X", 12, 18, 0), time="2025-04-30T19:00:00Z"))
    assert again.orders == []
    [later] = feed(engine, po("A", ("X", 5, 18, 0), ("X", 7, 22, 0), time="2025-04-30T20:00:00Z"))
    assert [c.order_id for c in later.orders] == ["o2", "o3"]
    assert later.orders[0].lines[0][5:] == (us(22), us(18))


def test_explain_shows_each_lines_expected_date():
    from recalculator.domain.explain import explain_order

    engine = Engine()
    queue(engine)
    feed(engine, po("A", ("X", 6, 10, 0)))
    [line] = explain_order(engine, "o1")
    assert (line.expected_date, line.published_expected_date) == ("2025-05-10T00:00:00Z", None)
    [line] = explain_order(engine, "o2")
    assert line.expected_date is None
