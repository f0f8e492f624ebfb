"""Property tests over random event logs with purchase orders and containers: after every
event, each line's incrementally kept expected date equals a from-scratch walk of its SKU
(`reference.expected_dates`), and with `publish_expected_date_changes` every order whose
line dates moved is published."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recalculator.domain.engine import Engine
from recalculator.domain.reference import expected_dates
from test_allocation_properties import BASE, SKUS, event_data, parse_all, setting_patches

eta = st.one_of(st.none(), st.integers(0, 20).map(lambda d: (BASE + timedelta(days=d)).date().isoformat()))
supply_events = st.one_of(
    st.tuples(st.just("PurchaseOrderUpdated"), st.fixed_dictionaries({
        "po_id": st.sampled_from(["po", "p2", "p3"]),
        "lines": st.lists(st.fixed_dictionaries({
            "sku": st.sampled_from(SKUS), "qty_ordered": st.integers(1, 9),
            "qty_received": st.integers(0, 4), "estimated_delivery_date": eta,
        }), min_size=1, max_size=3),
    })),
    st.tuples(st.just("ContainerUpdated"), st.fixed_dictionaries({
        "container_id": st.sampled_from(["c1", "c2"]), "estimated_arrival_date": eta,
        "lines": st.lists(st.fixed_dictionaries({"sku": st.sampled_from(SKUS), "qty": st.integers(0, 9)}),
                          max_size=3),
    })),
    st.tuples(st.just("POReceived"), st.fixed_dictionaries({
        "po_id": st.sampled_from(["po", "p2", "p3"]), "warehouse_id": st.just("W1"),
        "lines": st.lists(st.fixed_dictionaries({"sku": st.sampled_from(SKUS), "qty": st.integers(1, 6)}),
                          min_size=1, max_size=2),
    })),
    st.tuples(st.just("SettingsChanged"), st.fixed_dictionaries({"settings": st.fixed_dictionaries({}, optional={
        "use_shipping_containers_for_po": st.booleans(),
        "publish_expected_date_changes": st.booleans(),
    })})),
)
dated_patches = setting_patches.map(lambda patch: {**patch, "publish_expected_date_changes": True})


@st.composite
def dated_logs(draw, max_size: int = 60):
    items = [("SettingsChanged", {"settings": draw(dated_patches)})]
    items += draw(st.lists(st.one_of(event_data, supply_events, supply_events), min_size=5, max_size=max_size))
    log, clock = [], BASE + timedelta(days=5)
    for index, (kind, data) in enumerate(items):
        clock += timedelta(hours=draw(st.integers(0, 30)))
        log.append({"specversion": "1.0", "id": f"e{index}", "source": "/p", "type": kind,
                    "time": clock.isoformat(), "data": data})
    return log


def every_date(engine: Engine) -> dict:
    found = {}
    for sku in engine.lines_by_sku:
        for line, date in expected_dates(engine, sku).items():
            found[(line.order.order_id, line.line_id)] = date
    return found


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dated_logs())
def test_incremental_dates_equal_a_walk_from_scratch_after_every_event(log):
    engine = Engine()
    before = {}
    for event in parse_all(log):
        outcome = engine.handle(event)
        now = every_date(engine)
        kept = {
            (order.order_id, line.line_id): engine.expected_date(line)
            for order in engine.orders.values() for line in order.lines.values()
        }
        assert kept == now, f"after {event.type} {event.id}"
        if engine.settings.publish_expected_date_changes and engine.settings.enable_backorder_workflow:
            published = {change.order_id for change in outcome.orders}
            moved = {order_id for (order_id, _), date in now.items()
                     if (order_id, _) in before and before[(order_id, _)] != date}
            assert moved <= published, f"after {event.type} {event.id}: dates moved unpublished"
            for change in outcome.orders:
                for line in change.lines:
                    assert line.expected_date == now[(change.order_id, line.line_id)]
        before = now


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 5)), max_size=120),
       st.lists(st.tuples(st.integers(1, 9), st.integers(1, 12)), max_size=5))
def test_schedule_in_small_blocks_equals_a_plain_walk(steps, supply):
    """Blocks of 2 keys, so that splitting and emptying blocks are exercised."""
    import recalculator.domain.schedule as schedule_module
    from recalculator.domain.schedule import Schedule

    saved, schedule_module._BLOCK = schedule_module._BLOCK, 2
    try:
        schedule, units = Schedule(), {}
        for key, value in steps:
            if (0, key) in units:
                schedule.remove((0, key))
                del units[(0, key)]
            if value:
                schedule.add((0, key), value, None)
                units[(0, key)] = value
        arrivals = sorted(supply)
        schedule.segment(arrivals)
        walked, covered, index = {}, 0, 0
        cumulative = [sum(q for _, q in arrivals[:i + 1]) for i in range(len(arrivals))]
        for key in sorted(units):
            covered += units[key]
            while index < len(arrivals) and cumulative[index] < covered:
                index += 1
            walked[key] = arrivals[index][0] if index < len(arrivals) else None
        assert {key: schedule.date_of(key) for key in units} == walked
        assert list(schedule.keys_between((), (99,))) == sorted(units)
    finally:
        schedule_module._BLOCK = saved
