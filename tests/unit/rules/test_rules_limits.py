"""The engine never produces a value that cannot be stored or published (docs/behaviour.md,
"Limits"): stock levels that many deltas would take beyond the limits, and orders grown past
their line limit, are refused like any bad input: nothing changes, the reason says why."""

from __future__ import annotations

import orjson
import pytest
from backorder_events.limits import MAX_ORDER_LINES, MAX_SKU_STOCK, MAX_STOCK_QTY
from recalculator.domain.engine import Engine
from recalculator.publishing import output_events
from support import created, event, feed, parsed, published


def adjust(sku: str, warehouse: str = "W1", **change) -> dict:
    return event("InventoryAdjusted", {"sku": sku, "warehouse_id": warehouse, "recalculate": True, **change})


def received(warehouse: str, *lines: tuple[str, int]) -> dict:
    return event("POReceived", {"po_id": "P", "warehouse_id": warehouse,
                                "lines": [{"sku": sku, "qty": qty} for sku, qty in lines]})


def snapshot(engine: Engine):
    orders = {oid: {lid: (line.sku, line.qty) for lid, line in o.lines.items()}
              for oid, o in engine.orders.items()}
    return published(engine), orders, {s: dict(w) for s, w in engine.stock.items()}, dict(engine.totals)


def refused(engine: Engine, raw: dict, *words: str) -> None:
    before = snapshot(engine)
    [outcome] = feed(engine, raw)
    assert outcome.status == "rejected", outcome
    for word in words:
        assert word in outcome.reason, outcome.reason
    assert snapshot(engine) == before


def test_deltas_cannot_take_a_warehouse_beyond_max_stock_qty() -> None:
    engine = Engine()
    feed(engine, adjust("X", set_to=MAX_STOCK_QTY))
    refused(engine, adjust("X", delta=1),
            "stock of SKU 'X' in warehouse 'W1' would be 1000000000001", f"±{MAX_STOCK_QTY}")
    [outcome] = feed(engine, adjust("X", delta=-1))
    assert outcome.status == "applied" and engine.stock["X"]["W1"] == MAX_STOCK_QTY - 1


def test_nor_below_minus_max_stock_qty() -> None:
    engine = Engine()
    feed(engine, adjust("X", set_to=-MAX_STOCK_QTY))
    refused(engine, adjust("X", delta=-MAX_STOCK_QTY), f"would be {-2 * MAX_STOCK_QTY}")


def test_many_deltas_never_overflow_64_bits() -> None:
    engine = Engine()
    outcomes = feed(engine, *[adjust("X", delta=MAX_STOCK_QTY // 3) for _ in range(10)])
    assert [o.status for o in outcomes] == ["applied"] * 3 + ["rejected"] * 7
    assert engine.stock["X"]["W1"] <= MAX_STOCK_QTY


def test_a_po_receipt_is_checked_line_by_line_and_refused_as_a_whole() -> None:
    engine = Engine()
    feed(engine, adjust("X", set_to=MAX_STOCK_QTY - 10), adjust("Y", set_to=0))
    # The same SKU twice: 6 + 6 goes past the limit although each line alone would not.
    refused(engine, received("W1", ("Y", 5), ("X", 6), ("X", 6)), "SKU 'X'", "would be")
    assert engine.stock["Y"]["W1"] == 0


def test_a_skus_stock_over_its_warehouses_stays_within_max_sku_stock() -> None:
    engine = Engine()
    full = MAX_SKU_STOCK // MAX_STOCK_QTY  # warehouses at the limit that make the total
    feed(engine, *[adjust("X", f"W{n}", set_to=MAX_STOCK_QTY) for n in range(full)])
    assert sum(engine.stock["X"].values()) == MAX_SKU_STOCK
    refused(engine, adjust("X", "W-extra", set_to=1), "summed over its warehouses",
            f"would be {MAX_SKU_STOCK + 1}")
    [lowered] = feed(engine, adjust("X", "W0", delta=-1))
    assert lowered.status == "applied"
    [applied] = feed(engine, adjust("X", "W-extra", set_to=1))
    assert applied.status == "applied"


def test_what_is_published_stays_within_64_bits_and_json() -> None:
    engine = Engine()
    outcomes = feed(
        engine,
        adjust("X", set_to=MAX_STOCK_QTY),
        created("o1", [(str(n), "X", 10**9) for n in range(MAX_ORDER_LINES)]),
        event("RecalculateBackorders", {}),
    )
    for outcome in outcomes:
        for output in output_events(outcome, "cause", parsed(adjust("X", set_to=0)).time):
            orjson.dumps(output)  # refuses integers beyond 64 bits
            for value in _integers(output):
                assert abs(value) < 2**53


def _integers(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _integers(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _integers(item)
    elif isinstance(value, int) and not isinstance(value, bool):
        yield value


def test_an_order_cannot_grow_past_max_order_lines() -> None:
    engine = Engine()
    feed(engine, created("o1", [(str(n), "X", 1) for n in range(MAX_ORDER_LINES - 1)]))
    [added] = feed(engine, event("ItemAdded", {"order_id": "o1",
                                               "line": {"line_id": "last", "sku": "X", "qty": 1}}))
    assert added.status == "applied" and len(engine.orders["o1"].lines) == MAX_ORDER_LINES
    refused(engine, event("ItemAdded", {"order_id": "o1",
                                        "line": {"line_id": "more", "sku": "X", "qty": 1}}),
            "order 'o1' already has 1000 lines", "the most an order may have")


@pytest.mark.parametrize("kind", ["delta", "set_to"])
def test_the_router_refuses_what_the_engine_refuses(kind) -> None:
    from recalculator.domain.router import Router

    router = Router(2)
    first = parsed(adjust("X", set_to=MAX_STOCK_QTY))
    assert router.route(first).status == "applied"
    value = 1 if kind == "delta" else MAX_STOCK_QTY
    routed = router.route(parsed(adjust("X", **{kind: value})))
    assert (routed.status == "rejected") == (kind == "delta")
