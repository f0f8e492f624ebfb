"""The partitioned recalculator's tasks (route, allocation, assembly) with no global order
of inputs (docs/sharding.md, "The recalculator on consumer groups").

Whatever the interleaving of their channels: every input gets the engine's verdict, no
hand-over or order part is left waiting, no publication id is used twice, and after a final
full recalculation every line whose value follows from the state alone (calculated, not
frozen, not set by hand, the workflow on) publishes what the one-process engine publishes,
and so does every order made only of such lines. Lines whose value is history (frozen,
manual, or held while the workflow is off) can differ when inputs of different partitions
interleave differently; taken one input at a time in time order, with everything it causes
delivered before the next, the tasks equal the engine on every line and order."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from partitioned_simulation import (
    InTimeOrder,
    Simulation,
    as_route_tasks_see_it,
    assert_equal,
    engine_run,
)
from support import generated_events, parsed
from test_allocation_properties import BASE, event_logs, parse_all
from test_expected_date_properties import dated_logs



def final_inputs(events) -> list:
    """A full recalculation a minute after the last input, then a recalculation of a SKU no
    line has, a year later: it only ends the wait of inputs held for orders that never
    came (docs/sharding.md), since a year later the full one would freeze every line by
    age where `max_days_to_be_back` is set."""
    last = max(event.time for event in events)

    def command(name: str, after: timedelta, data: dict) -> object:
        return parsed({"specversion": "1.0", "id": name, "source": "/tests",
                       "type": "RecalculateBackorders", "time": (last + after).isoformat(), "data": data})

    return [command("final-recalculation", timedelta(minutes=1), {}),
            command("end-of-waits", timedelta(days=366), {"skus": ["no line has this SKU"]})]
SHAPES = [(1, 2, 1), (2, 3, 2), (3, 5, 2), (2, 1, 3), (3, 6, 3)]


def partitioned_log(log: list[dict]) -> list[dict]:
    """A random log made for route tasks that own orders by id: one input a minute (the
    tasks take inputs in their time order, as the engine does); no split to an id used
    before or by an OrderCreated (two creators of one order, see docs/sharding.md); and every
    other input on a split order's source after the split names the split-off order
    instead, so that split-off orders get inputs of their own. A receipt of several SKUs is
    published as one receipt per SKU: each SKU's stock inputs then share one partition, as
    the partitioned recalculator needs (docs/sharding.md)."""
    created = {raw["data"]["order_id"] for raw in log if raw["type"] == "OrderCreated"}
    split_off: dict[str, str] = {}
    shaped = []
    for index, raw in enumerate(log):
        raw = {**raw, "time": (BASE + timedelta(minutes=index)).isoformat()}
        data = raw["data"]
        if raw["type"] == "OrderSplit":
            if data["new_order_id"] in created:
                continue
            created.add(data["new_order_id"])
            split_off[data["order_id"]] = data["new_order_id"]
        elif raw["type"] != "OrderCreated" and data.get("order_id") in split_off and index % 2:
            raw = {**raw, "data": {**data, "order_id": split_off[data["order_id"]]}}
        elif raw["type"] == "POReceived" and len({line["sku"] for line in data["lines"]}) > 1:
            for sku in sorted({line["sku"] for line in data["lines"]}):
                lines = [line for line in data["lines"] if line["sku"] == sku]
                shaped.append({**raw, "id": f"{raw['id']}-{sku}", "data": {**data, "lines": lines}})
            continue
        shaped.append(raw)
    return shaped


def run(events, shape, scheduler, simulation_class=Simulation) -> tuple[Simulation, object, dict]:
    seen = as_route_tasks_see_it(events)
    engine, verdicts = engine_run(seen + as_route_tasks_see_it(final_inputs(events)))
    simulation = simulation_class(*shape, scheduler)
    simulation.feed(seen)
    simulation.run()
    for final in final_inputs(events):  # each once every task is done with what came before
        simulation.feed(as_route_tasks_see_it([final]))
        simulation.run()
    assert simulation.idle(), "a hand-over or an order's parts were left waiting"
    assert simulation.verdicts == verdicts
    assert not simulation.refused_transfers  # splits never reuse an id here
    assert all(len(decided) == 1 for decided in simulation.broadcast_verdicts.values())
    ids = Counter(key for key, _ in simulation.published)
    assert not [key for key, count in ids.items() if count > 1]
    return simulation, engine, verdicts


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_logs(max_size=80), st.sampled_from(SHAPES), st.integers(0, 2**32))
def test_partitioned_tasks_in_any_interleaving(log, shape, seed):
    simulation, engine, _ = run(parse_all(partitioned_log(log)), shape, random.Random(seed))
    assert_equal(simulation, engine, every_line=False)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_logs(max_size=80), st.sampled_from(SHAPES))
def test_partitioned_tasks_one_input_at_a_time_equal_the_engine(log, shape):
    simulation, engine, _ = run(parse_all(partitioned_log(log)), shape, InTimeOrder())
    assert_equal(simulation, engine, every_line=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dated_logs(max_size=60), st.sampled_from(SHAPES), st.integers(0, 2**32), st.booleans())
def test_partitioned_tasks_with_purchase_orders_and_containers(log, shape, seed, in_time_order):
    scheduler = InTimeOrder() if in_time_order else random.Random(seed)
    simulation, engine, _ = run(parse_all(partitioned_log(log)), shape, scheduler)
    assert_equal(simulation, engine, every_line=in_time_order)


def test_partitioned_tasks_on_a_generated_day():
    events = generated_events()
    for seed in range(2):
        simulation, engine, _ = run(events, (3, 6, 3), random.Random(seed))
        assert_equal(simulation, engine, every_line=False)
        assert all(task.engine.lines_by_sku for task in simulation.allocation)
        assert simulation.forwarded or simulation.routed  # the work crossed partitions
    simulation, engine, _ = run(events, (3, 6, 3), InTimeOrder())
    assert_equal(simulation, engine, every_line=True)
