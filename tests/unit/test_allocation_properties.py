"""Property tests over random event logs: the incremental engine agrees with a from-scratch
recomputation after every event, and the allocation invariants hold."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recalculator.domain import policy
from recalculator.domain.engine import Engine
from support import parsed

SKUS = ["A", "B", "C"]
WAREHOUSES = ["W1", "W2", "W3"]
ORDER_IDS = ["o1", "o2", "o3", "o4", "o5", "o6", "o7"]
LINE_IDS = ["1", "2", "3"]
BASE = datetime(2025, 4, 1, 12, tzinfo=UTC)

order_ids = st.sampled_from(ORDER_IDS)
line_ids = st.sampled_from(LINE_IDS)
skus = st.sampled_from(SKUS)
qtys = st.integers(1, 6)
statuses = st.sampled_from(["InProcess", "InProcess", "InProcess", "OnHold", "Quote", "Completed", 200])
payments = st.sampled_from(["Charged", "Charged", "Unpaid", "Authorized", "Refunded", 70])
stamp = st.integers(0, 30 * 24).map(lambda h: (BASE + timedelta(hours=h)).isoformat())
maybe_wh = st.one_of(st.none(), st.sampled_from(WAREHOUSES))


def lines(min_size=1):
    return st.lists(
        st.fixed_dictionaries({"line_id": line_ids, "sku": skus, "qty": qtys}),
        min_size=min_size, max_size=3, unique_by=lambda d: d["line_id"],
    )


setting_patches = st.fixed_dictionaries(
    {},
    optional={
        "max_days_to_be_back": st.sampled_from([None, 1, 3, 10]),
        "use_payment_date": st.booleans(),
        "warehouse_based": st.booleans(),
        "default_warehouse_id": maybe_wh,
        "exclude_dropship_qty": st.booleans(),
        "exclude_unsellable_qty": st.booleans(),
        "consider_replacement_sku_qty": st.booleans(),
        "include_authorized": st.booleans(),
        "include_on_hold": st.booleans(),
        "include_unpaid_and_partially_paid": st.booleans(),
        "prioritize_fully_shippable": st.booleans(),
        "prioritize_rush": st.booleans(),
        "prioritize_picked": st.booleans(),
        "update_on_order_status_change": st.booleans(),
        "stop_marking_on_create": st.booleans(),
        "enable_backorder_workflow": st.sampled_from([True, True, True, False]),
    },
)

event_data = st.one_of(
    st.tuples(st.just("OrderCreated"), st.fixed_dictionaries({
        "order_id": order_ids, "order_date": stamp, "order_status": statuses,
        "payment_status": payments, "lines": lines(),
    }, optional={"rush": st.booleans(), "picked": st.booleans(), "payment_date": stamp,
                 "ship_from_warehouse_id": maybe_wh})),
    st.tuples(st.just("OrderCreated"), st.fixed_dictionaries({
        "order_id": order_ids, "order_date": stamp, "payment_status": st.just("Charged"),
        "lines": lines(),
    })),
    st.tuples(st.just("OrderSplit"), st.fixed_dictionaries({
        "order_id": order_ids, "new_order_id": st.sampled_from(["s1", "s2", "s3", "o5"]),
        "lines": st.lists(st.fixed_dictionaries({"line_id": line_ids, "qty": st.integers(1, 3),
                                                 "new_line_id": line_ids}),
                          min_size=1, max_size=2, unique_by=(lambda d: d["line_id"], lambda d: d["new_line_id"])),
    })),
    st.tuples(st.just("ItemAdded"), st.fixed_dictionaries({
        "order_id": order_ids, "line": st.fixed_dictionaries({"line_id": st.sampled_from(["3", "4", "5"]), "sku": skus,
                                       "qty": qtys}),
    })),
    st.tuples(st.just("ItemReplaced"), st.fixed_dictionaries(
        {"order_id": order_ids, "line_id": line_ids, "new_sku": skus},
        optional={"qty": st.one_of(st.none(), qtys)})),
    st.tuples(st.just("OrderStatusChanged"), st.fixed_dictionaries({"order_id": order_ids}, optional={
        "order_status": statuses, "payment_status": payments, "rush": st.booleans(),
        "picked": st.booleans(), "payment_date": st.one_of(st.none(), stamp),
        "ship_from_warehouse_id": maybe_wh,
    })),
    st.tuples(st.just("POReceived"), st.fixed_dictionaries({
        "po_id": st.just("po"), "warehouse_id": st.sampled_from(WAREHOUSES),
        "lines": st.lists(st.fixed_dictionaries({"sku": skus, "qty": st.integers(1, 8)}), min_size=1, max_size=2),
    })),
    st.tuples(st.just("InventoryAdjusted"), st.one_of(
        st.fixed_dictionaries({"sku": skus, "warehouse_id": st.sampled_from(WAREHOUSES),
                               "delta": st.integers(-6, 6), "recalculate": st.booleans()}),
        st.fixed_dictionaries({"sku": skus, "warehouse_id": st.sampled_from(WAREHOUSES),
                               "set_to": st.integers(-3, 12), "recalculate": st.booleans()}),
    )),
    st.tuples(st.just("WarehouseUpserted"), st.fixed_dictionaries({
        "warehouse_id": st.sampled_from(WAREHOUSES),
        "type": st.sampled_from(["Sellable", "Dropship", "Unsellable", "FBA", "Interim", "Untested"]),
    })),
    st.tuples(st.just("ProductUpserted"), st.fixed_dictionaries(
        {"sku": skus}, optional={"replacement_sku": st.one_of(st.none(), skus)}
    ).filter(lambda d: d.get("replacement_sku") != d["sku"])),
    st.tuples(st.just("SettingsChanged"), st.fixed_dictionaries({"settings": setting_patches})),
    st.tuples(st.just("RecalculateBackorders"), st.fixed_dictionaries({}, optional={
        "order_ids": st.lists(order_ids, max_size=2), "skus": st.lists(skus, max_size=2)})),
    st.tuples(st.just("ReallocateBackorder"), st.fixed_dictionaries({
        "order_id": order_ids,
        "lines": st.lists(st.fixed_dictionaries({"line_id": line_ids, "backorder_qty": st.integers(0, 3)}),
                          min_size=1, max_size=2, unique_by=lambda d: d["line_id"]),
    })),
    st.tuples(st.sampled_from(["MarkBackorder", "MarkNotBackorder"]),
              st.fixed_dictionaries({"order_ids": st.lists(order_ids, min_size=1, max_size=2)})),
)


@st.composite
def event_logs(draw, monotonic: bool = True, max_size: int = 60):
    # Often a non-default mode from the start; then a few orders and some stock, so that
    # most later events refer to something.
    setup = []
    if draw(st.booleans()):
        setup.append(("SettingsChanged", {"settings": draw(setting_patches)}))
    setup += [
        ("InventoryAdjusted", {"sku": sku, "warehouse_id": draw(st.sampled_from(WAREHOUSES)),
                               "set_to": draw(st.integers(0, 10))})
        for sku in SKUS
    ]
    for order_id in ORDER_IDS[:4]:
        setup.append(("OrderCreated", {
            "order_id": order_id, "order_date": draw(stamp), "payment_status": "Charged",
            "rush": draw(st.booleans()), "picked": draw(st.booleans()),
            "ship_from_warehouse_id": draw(maybe_wh), "lines": draw(lines()),
        }))
    items = draw(st.lists(event_data, min_size=5, max_size=max_size))
    log = []
    clock = BASE + timedelta(days=5)
    for index, (kind, data) in enumerate(setup + items):
        hours = draw(st.integers(0, 48))
        clock = clock + timedelta(hours=hours) if monotonic else BASE + timedelta(hours=hours * 12)
        log.append({"specversion": "1.0", "id": f"e{index}", "source": "/p", "type": kind,
                    "time": clock.isoformat(), "data": data})
    return log


def parse_all(log):
    events = []
    for raw in log:
        try:
            events.append(parsed(raw))
        except ValueError:
            pass  # schema-level rejections are the contract tests' business
    return events


def check_pool_invariants(engine: Engine) -> None:
    for pool in engine.pools.values():
        engine.prepare(pool, engine.last_time)
        allocs = [line.alloc for line in pool.lines_in_order()]
        assert all(0 <= a <= line.qty for a, line in zip(allocs, pool.lines_in_order()))
        assert sum(allocs) <= pool.available <= pool.supply
        assert sum(allocs) == pool.filled
        if not pool.fully_shippable:
            short_seen = False
            for line in pool.lines_in_order():
                if short_seen:
                    assert line.alloc == 0, "a later line was served while an earlier one is short"
                short_seen = short_seen or line.alloc < line.qty
            assert sum(allocs) == min(pool.available, sum(line.qty for line in pool.lines_in_order()))


def check_published(engine: Engine) -> None:
    for order in engine.orders.values():
        for line in order.lines.values():
            assert 0 <= line.published <= line.qty
    totals = {}
    for sku, lines_ in engine.lines_by_sku.items():
        totals[sku] = sum(line.published for line in lines_)
    assert {k: v for k, v in totals.items() if v} == {k: v for k, v in engine.totals.items() if v}


def run_pair(log):
    fast, slow = Engine(), Engine(incremental=False)
    for event in parse_all(log):
        a, b = fast.handle(event), slow.handle(event)
        assert a == b, f"after {event.type} {event.id}: {a} != {b}"
    return fast, slow


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_logs(max_size=80))
def test_incremental_equals_from_scratch(log):
    fast, _ = run_pair(log)
    check_published(fast)
    if fast.last_time is not None:
        check_pool_invariants(fast)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_logs(monotonic=False))
def test_incremental_equals_from_scratch_when_time_goes_back(log):
    run_pair(log)


@settings(max_examples=50, deadline=None)
@given(event_logs(max_size=30))
def test_replay_is_deterministic(log):
    def outputs():
        engine = Engine()
        return json.dumps([repr(engine.handle(e)) for e in parse_all(log)])

    assert outputs() == outputs()


def test_policy_rejects_refunded_orders():
    from recalculator.domain.model import Order
    order = Order("x", "c", 0, "InProcess", "Refunded")
    assert not policy.status_eligible(Engine().settings, order)
