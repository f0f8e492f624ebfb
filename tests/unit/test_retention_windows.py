"""Retention in the pure core (docs/behaviour.md, Retention): duplicates by CloudEvents
identity within a dedupe window, closed orders forgotten after theirs, decided on business
time so that a replay decides the same; the sharded router, shards and assembler forget
with the one-process engine."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta

import pytest
from backorders_workload import WorkloadShape, generate_days
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recalculator.domain.engine import Engine
from recalculator.domain.model import Line, Order
from recalculator.domain.sharded import ShardedEngine
from support import created, event, feed, order_lines, parsed, stock
from test_allocation_properties import ORDER_IDS, SKUS, event_data, lines, order_ids, parse_all
from test_sharded_equivalence import normalized

DAY = timedelta(days=1)
T0 = datetime(2025, 5, 1, 8, tzinfo=UTC)


def at(offset: timedelta) -> str:
    return (T0 + offset).isoformat().replace("+00:00", "Z")


def tick(offset: timedelta, **ids) -> dict:
    """An event that changes nothing but moves the business clock."""
    return event("PurchaseOrderUpdated", {"po_id": "P", "lines": [{"sku": "Z", "qty_ordered": 1}]},
                 time=at(offset), **ids)


def from_source(raw: dict, source: str) -> dict:
    return {**raw, "source": source}


# -- duplicates: source and id ---------------------------------------------------------------


def test_the_same_id_from_another_source_is_another_event():
    """CloudEvents 1.0: source + id identify an event; two producers may use the same id."""
    engine = Engine()
    oms = from_source(created("o1", [("1", "X", 1)], time=at(timedelta())), "/oms")
    oms["id"] = "42"
    wms = from_source(stock("X", 5, recalculate=True, time=at(timedelta())), "/wms")
    wms["id"] = "42"
    first, second = feed(engine, oms, wms)
    assert (first.status, second.status) == ("applied", "applied")
    assert order_lines(engine, "o1") == {"1": 0}  # the stock arrived: it was not skipped
    assert set(engine.processed) == {("/oms", "42"), ("/wms", "42")}


def test_the_same_source_and_id_is_a_duplicate_even_with_other_data():
    engine = Engine()
    first = created("o1", [("1", "X", 1)], time=at(timedelta()))
    again = {**created("o2", [("1", "X", 1)], time=at(timedelta())), "id": first["id"]}
    applied, skipped = feed(engine, first, again)
    assert (applied.status, skipped.status) == ("applied", "duplicate")
    assert first["id"] in skipped.reason and "/tests" in skipped.reason
    assert "o2" not in engine.orders


# -- the dedupe window -----------------------------------------------------------------------------


def test_an_id_is_remembered_for_the_dedupe_window_of_business_time_then_forgotten():
    engine = Engine(dedupe_window=2 * DAY)
    original = created("o1", [("1", "X", 1)], time=at(timedelta()))
    [applied] = feed(engine, original)
    assert applied.status == "applied"
    # Exactly the window later it is still remembered: a redelivery is skipped.
    feed(engine, tick(2 * DAY))
    [redelivered] = feed(engine, original)
    assert redelivered.status == "duplicate"
    assert (original["source"], original["id"]) in engine.processed
    # A moment past the window it is forgotten ...
    feed(engine, tick(2 * DAY + timedelta(seconds=1)))
    assert (original["source"], original["id"]) not in engine.processed
    # ... and a redelivery, older than the window, is refused instead of applied again.
    [late] = feed(engine, original)
    assert late.status == "rejected"
    assert "dedupe window (2 days)" in late.reason
    assert order_lines(engine, "o1") == {"1": 1}


def test_an_event_within_the_window_but_older_than_the_newest_is_still_applied():
    engine = Engine(dedupe_window=2 * DAY)
    feed(engine, tick(3 * DAY))
    [late] = feed(engine, created("o1", [("1", "X", 1)], time=at(DAY + timedelta(hours=1))))
    assert late.status == "applied"
    # Remembered from when it was applied (the newest time then), not from its own time.
    feed(engine, tick(4 * DAY + timedelta(hours=12)))
    assert len([key for key in engine.processed if key[1].startswith("t-")]) == 3


def test_the_clock_is_the_newest_applied_time_and_refused_events_do_not_move_it():
    engine = Engine(dedupe_window=DAY)
    feed(engine, tick(5 * DAY))
    feed(engine, tick(4 * DAY + timedelta(hours=1)))  # older, within the window: applied
    assert engine.clock == int((T0 + 5 * DAY).timestamp() * 1_000_000)
    feed(engine, event("MarkBackorder", {"order_ids": ["nope"]}, time=at(9 * DAY)))  # refused
    assert engine.clock == int((T0 + 5 * DAY).timestamp() * 1_000_000)


def test_commands_do_not_move_the_clock():
    """The periodic run is stamped by the worker's scheduler from the wall clock, manual
    actions by when an operator acted: a log whose business times lag them must not look
    aged by them (a fresh worker publishes its periodic run before any input arrives)."""
    engine = Engine(dedupe_window=DAY, closed_order_retention=DAY)
    periodic = event("RecalculateBackorders", {}, time=at(400 * DAY))
    [first] = feed(engine, periodic)
    assert first.status == "applied" and engine.clock is None
    [order] = feed(engine, created("o1", [("1", "X", 1)], time=at(timedelta())))
    assert order.status == "applied"
    feed(engine, event("MarkBackorder", {"order_ids": ["o1"]}, time=at(300 * DAY)))
    assert engine.clock == int(T0.timestamp() * 1_000_000)
    # A command is remembered from its own time when that is newer than the clock.
    feed(engine, tick(30 * DAY))
    [again] = feed(engine, periodic)
    assert again.status == "duplicate"


def test_without_a_window_ids_are_kept_for_ever():
    engine = Engine()
    original = tick(timedelta())
    feed(engine, original, tick(400 * DAY))
    [again] = feed(engine, original)
    assert again.status == "duplicate"


def test_a_window_must_be_positive():
    with pytest.raises(ValueError):
        Engine(dedupe_window=timedelta(0))


# -- closed orders ------------------------------------------------------------------------------------


def backordered_then_completed(retention=DAY) -> Engine:
    """o1 backordered 2 of X (no stock), shipped (Completed) at T0 + 1h; o2 open."""
    engine = Engine(closed_order_retention=retention)
    feed(engine,
         created("o1", [("1", "X", 2)], time=at(timedelta())),
         created("o2", [("1", "X", 1)], time=at(timedelta())),
         event("OrderStatusChanged", {"order_id": "o1", "order_status": "Completed"},
               time=at(timedelta(hours=1))))
    return engine


def test_a_closed_order_is_kept_until_its_lines_were_recalculated_to_zero():
    engine = backordered_then_completed()
    # Past the retention, but X was not recalculated since o1 closed: it still publishes 2.
    [later] = feed(engine, tick(3 * DAY))
    assert later.evicted == [] and order_lines(engine, "o1") == {"1": 2}
    assert engine.orders["o1"].owing == 1
    [recalculated] = feed(engine, event("RecalculateBackorders", {}, time=at(3 * DAY)))
    # The recalculation publishes o1's 0 first, then forgets the order.
    assert [(c.order_id, c.status) for c in recalculated.orders] == [("o1", "None")]
    assert recalculated.evicted == ["o1"]
    assert "o1" not in engine.orders
    assert engine.totals["X"] == 1  # o2's backorder: the totals did not move
    assert {line.order.order_id for line in engine.lines_by_sku["X"]} == {"o2"}


def test_a_closed_order_is_evicted_once_the_retention_has_passed():
    engine = backordered_then_completed(retention=DAY)
    [recalculated] = feed(engine, event("RecalculateBackorders", {}, time=at(timedelta(hours=2))))
    assert recalculated.evicted == [] and order_lines(engine, "o1") == {"1": 0}
    [exactly] = feed(engine, tick(DAY + timedelta(hours=1)))  # closed for exactly the retention
    assert exactly.evicted == []
    [past] = feed(engine, tick(DAY + timedelta(hours=1, seconds=1)))
    assert past.evicted == ["o1"]


def test_an_evicted_order_is_freed_at_once_not_left_to_the_cycle_collector():
    """The runtimes make full collections rare (runtime/tuning.py): an evicted order that
    only the cycle collector could free would stay in memory for days of a long run."""
    engine = backordered_then_completed(retention=DAY)
    feed(engine, event("RecalculateBackorders", {}, time=at(timedelta(hours=2))))
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds unreachable is kept in gc.garbage
    try:
        [past] = feed(engine, tick(2 * DAY))
        assert past.evicted == ["o1"]
        gc.collect()
        left = [o for o in gc.garbage if isinstance(o, Order | Line)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []


def test_an_event_naming_an_evicted_order_is_dead_lettered_as_unknown():
    engine = backordered_then_completed()
    feed(engine, event("RecalculateBackorders", {}, time=at(timedelta(hours=2))), tick(2 * DAY))
    [refused] = feed(engine, event("OrderStatusChanged", {"order_id": "o1", "order_status": "Cancelled"},
                                   time=at(2 * DAY)))
    assert refused.status == "rejected" and refused.reason == "unknown order 'o1'"


def test_a_manual_backorder_on_a_closed_order_waits_for_the_next_recalculation():
    engine = backordered_then_completed()
    feed(engine, event("RecalculateBackorders", {}, time=at(timedelta(hours=2))),
         event("MarkBackorder", {"order_ids": ["o1"]}, time=at(timedelta(hours=3))))
    [later] = feed(engine, tick(3 * DAY))
    assert later.evicted == [] and order_lines(engine, "o1") == {"1": 2}
    [recalculated] = feed(engine, event("RecalculateBackorders", {"skus": ["X"]}, time=at(3 * DAY)))
    assert recalculated.evicted == ["o1"]


def test_a_reopened_order_is_kept_and_closing_again_starts_the_retention_again():
    engine = backordered_then_completed()
    feed(engine,
         event("RecalculateBackorders", {}, time=at(timedelta(hours=2))),
         event("OrderStatusChanged", {"order_id": "o1", "order_status": "InProcess"},
               time=at(timedelta(hours=20))))
    [later] = feed(engine, tick(5 * DAY))
    assert later.evicted == [] and "o1" in engine.orders
    feed(engine,
         event("OrderStatusChanged", {"order_id": "o1", "order_status": "Void"}, time=at(5 * DAY)),
         event("RecalculateBackorders", {}, time=at(5 * DAY)))
    [kept] = feed(engine, tick(6 * DAY))
    assert kept.evicted == []
    [gone] = feed(engine, tick(6 * DAY + timedelta(seconds=1)))
    assert gone.evicted == ["o1"]


@pytest.mark.parametrize("status", ["Cancelled", "Void", -1, 999, 3])
def test_every_closed_status_is_evicted(status):
    engine = Engine(closed_order_retention=DAY)
    feed(engine,
         created("o1", [("1", "X", 1)], time=at(timedelta())),
         event("OrderStatusChanged", {"order_id": "o1", "order_status": status}, time=at(timedelta())),
         event("RecalculateBackorders", {}, time=at(timedelta())))
    [later] = feed(engine, tick(2 * DAY))
    assert later.evicted == ["o1"]


@pytest.mark.parametrize("status", ["OnHold", "Quote", "ShoppingCart", "ProblemOrder"])
def test_orders_in_other_statuses_are_kept(status):
    engine = Engine(closed_order_retention=DAY)
    feed(engine,
         created("o1", [("1", "X", 1)], time=at(timedelta())),
         event("OrderStatusChanged", {"order_id": "o1", "order_status": status,
                                      "payment_status": "Refunded"}, time=at(timedelta())),
         event("RecalculateBackorders", {}, time=at(timedelta())))
    [later] = feed(engine, tick(30 * DAY))
    assert later.evicted == [] and "o1" in engine.orders


def test_an_order_split_off_a_closed_order_is_closed_since_the_split():
    engine = Engine(closed_order_retention=DAY)
    feed(engine,
         created("o1", [("1", "X", 3)], time=at(timedelta())),
         event("OrderStatusChanged", {"order_id": "o1", "order_status": "Completed"}, time=at(timedelta())),
         event("OrderSplit", {"order_id": "o1", "new_order_id": "o9",
                              "lines": [{"line_id": "1", "qty": 1, "new_line_id": "1"}]},
               time=at(timedelta(hours=12))))
    [first] = feed(engine, tick(DAY + timedelta(hours=1)))
    assert first.evicted == ["o1"]  # the split recalculated X: nothing owes
    [second] = feed(engine, tick(DAY + timedelta(hours=13)))
    assert second.evicted == ["o9"]


def test_values_held_while_the_workflow_is_disabled_go_with_the_order():
    engine = backordered_then_completed()
    feed(engine,
         event("RecalculateBackorders", {}, time=at(timedelta(hours=2))),
         event("SettingsChanged", {"settings": {"enable_backorder_workflow": False}},
               time=at(timedelta(hours=3))),
         event("ItemAdded", {"order_id": "o1", "line": {"line_id": "2", "sku": "Y", "qty": 1}},
               time=at(timedelta(hours=4))))
    assert "o1" in engine.held_orders
    [later] = feed(engine, tick(3 * DAY))
    assert later.evicted == ["o1"] and "o1" not in engine.held_orders


def test_an_engine_that_forgets_publishes_exactly_what_one_that_keeps_everything_does():
    """Over days of trading, forgetting closed orders and old ids changes no output: only
    what no later event needs goes."""
    keeping = Engine()
    forgetting = Engine(dedupe_window=DAY, closed_order_retention=DAY)
    sizes = []
    for day in generate_days(6, seed=3, shape=WorkloadShape(orders=150, skus=25)):
        for raw in day:
            try:
                parsed_event = parsed(raw)
            except ValueError:
                continue
            kept, forgot = keeping.handle(parsed_event), forgetting.handle(parsed_event)
            forgot.evicted = []
            assert forgot == kept, f"{parsed_event.type} {parsed_event.id}"
        sizes.append((len(forgetting.orders), len(forgetting.processed)))
    assert len(keeping.orders) > 2 * sizes[-1][0]
    assert sizes[-1][0] <= 1.1 * sizes[2][0] and sizes[-1][1] <= 1.1 * sizes[2][1], sizes


# -- random logs: the incremental engine, the from-scratch one and the sharded pipeline ---------------


closing_events = st.tuples(st.just("OrderStatusChanged"), st.fixed_dictionaries({
    "order_id": order_ids,
    "order_status": st.sampled_from(["Completed", "Cancelled", "Void", -1, "InProcess", "OnHold"]),
}))
recalculations = st.tuples(st.just("RecalculateBackorders"), st.one_of(
    st.just({}), st.fixed_dictionaries({"order_ids": st.lists(order_ids, max_size=2)}),
))
REDELIVER, OTHER_SOURCE = "redeliver", "other-source"


@st.composite
def retention_logs(draw, max_size: int = 70, workflow_always_on: bool = False):
    """Logs where orders close, get recalculated and are evicted, ids come back, from the
    same source or another, and time sometimes jumps back. With `workflow_always_on`, no
    SettingsChanged disables the workflow: the sharded pipeline and the engine differ, before
    any retention, when SKUs move between shards after orders were touched while it was
    disabled (the assembler publishes the values held back, the engine waits for the order
    to be touched again)."""
    kinds = st.one_of(event_data, closing_events, closing_events, recalculations, recalculations,
                      st.just((REDELIVER, None)), st.just((OTHER_SOURCE, None)))
    setup = [("InventoryAdjusted", {"sku": sku, "warehouse_id": "W1", "set_to": draw(st.integers(0, 8))})
             for sku in SKUS]
    setup += [("OrderCreated", {"order_id": order_id, "order_date": "2025-04-06T00:00:00Z",
                                "payment_status": "Charged", "lines": draw(lines())})
              for order_id in ORDER_IDS[:5]]
    items = setup + draw(st.lists(kinds, min_size=20, max_size=max_size))
    log = []
    newest = clock = datetime(2025, 4, 6, 12, tzinfo=UTC)
    for index, (kind, data) in enumerate(items):
        step = draw(st.sampled_from([0, 1, 2, 6, 6, 12, 12, 24, 36, -20, -60]))
        if step >= 0:
            newest += timedelta(hours=step)
            clock = newest
        else:  # a late event: older than the newest, within the dedupe window or not
            clock = newest + timedelta(hours=step)
        if kind in (REDELIVER, OTHER_SOURCE):
            if not log:
                continue
            earlier = dict(log[draw(st.integers(0, len(log) - 1))])
            if kind == OTHER_SOURCE:
                earlier["source"] = "/other"
                earlier["time"] = clock.isoformat()
            log.append(earlier)
            continue
        if workflow_always_on and kind == "SettingsChanged":
            data = {"settings": {**data["settings"], "enable_backorder_workflow": True}}
        log.append({"specversion": "1.0", "id": f"e{index}", "source": "/p", "type": kind,
                    "time": clock.isoformat(), "data": data})
    return log


# Manual actions are not held (the sharded router does not hold them: docs/sharding.md).
WINDOWS = {"dedupe_window": timedelta(days=2), "closed_order_retention": timedelta(days=1),
           "action_wait": None}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(retention_logs())
def test_incremental_equals_from_scratch_with_retention(log):
    fast, slow = Engine(**WINDOWS), Engine(incremental=False, **WINDOWS)
    for parsed_event in parse_all(log):
        a, b = fast.handle(parsed_event), slow.handle(parsed_event)
        assert a == b, f"after {parsed_event.type} {parsed_event.id}: {a} != {b}"
    for order in fast.orders.values():  # what was evicted held nothing
        assert all(line.live for line in order.lines.values())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(retention_logs(workflow_always_on=True), st.sampled_from([1, 2, 3, 5]))
def test_sharded_forgets_with_the_one_process_engine(log, shards):
    single, sharded = Engine(**WINDOWS), ShardedEngine(shards, **WINDOWS)
    for parsed_event in parse_all(log):
        expected, actual = single.handle(parsed_event), sharded.handle(parsed_event)
        assert normalized(actual) == normalized(expected), f"{parsed_event.type} {parsed_event.id}"
        assert actual.evicted == expected.evicted
    assert set(sharded.router.engine.orders) == set(single.orders)
    assert set(sharded.router.known) <= set(single.orders)
    assert set(sharded.assembler.orders) <= set(single.orders)
    for shard in sharded.shards:
        assert set(shard.orders) <= set(single.orders)
    assert sharded.published() == {
        (order_id, line_id): line.published
        for order_id, order in single.orders.items() for line_id, line in order.lines.items()
    }


def test_the_same_log_forgets_and_evicts_at_the_same_events():
    days = [raw for day in generate_days(4, seed=5, shape=WorkloadShape(orders=120, skus=20))
            for raw in day]

    def decisions():
        engine = Engine(dedupe_window=DAY, closed_order_retention=DAY)
        out = []
        for raw in days:
            try:
                outcome = engine.handle(parsed(raw))
            except ValueError:
                continue
            out.append((outcome.status, outcome.reason, tuple(outcome.evicted)))
        return out

    first = decisions()
    assert first == decisions()
    assert sum(len(evicted) for _, _, evicted in first) > 100


def test_the_router_and_the_assembler_stay_flat_over_days():
    sharded = ShardedEngine(3, dedupe_window=DAY, closed_order_retention=DAY)
    sizes = []
    for day in generate_days(6, seed=9, shape=WorkloadShape(orders=150, skus=25)):
        for raw in day:
            try:
                sharded.handle(parsed(raw))
            except ValueError:
                continue
        router = sharded.router
        sizes.append((len(router.known), len(router.engine.orders), len(router.engine.processed),
                      len(sharded.assembler.orders), sum(len(s.orders) for s in sharded.shards)))
    for later in sizes[3:]:
        for measure, settled in zip(later, sizes[2]):
            assert measure <= 1.1 * settled, sizes
