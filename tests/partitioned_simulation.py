"""The partitioned recalculator's tasks (recalculator.domain.partitioned) run in one process,
the messages between them moved in an order chosen by the test: each channel (one producer
into one partition) stays in order, and everything else interleaves as a random scheduler
picks. Stands in for Kafka's topics and the consumer group, to test the tasks' protocol."""

from __future__ import annotations

import random
from collections import defaultdict, deque

from backorder_events.topics import INVENTORY_TYPES, REFERENCE_TYPES
from recalculator.domain.assembler import status_of
from recalculator.domain.engine import Engine
from recalculator.domain.partitioned import (
    SPLIT_TYPES,
    AllocationTask,
    AssemblyTask,
    RouteTask,
    split_command,
)
from recalculator.domain.results import HELD, PartialLine
from recalculator.domain.sharding import stable_shard

HOLD_WAIT = 365 * 86_400_000_000  # a year of event time, in µs: the test's final input ends it


def inventory_key(event) -> str:
    data = event.data
    if getattr(data, "sku", None):
        return data.sku
    skus = {line.sku for line in getattr(data, "lines", ())}
    if len(skus) == 1:
        return skus.pop()
    return getattr(data, "po_id", None) or getattr(data, "container_id", None) or ""


def is_broadcast_command(event) -> bool:
    return event.type == "RecalculateBackorders" and not event.data.order_ids


def as_route_tasks_see_it(events) -> list[tuple[object, str | None]]:
    """The log as the route tasks receive it: (input, order or SKU key, or None for an input
    every route task receives); commands split into their pieces."""
    seen = []
    for event in events:
        if event.type in REFERENCE_TYPES:
            seen.append((event, None))
        elif event.type in INVENTORY_TYPES:
            seen.append((event, inventory_key(event)))
        elif event.type in SPLIT_TYPES:
            split = split_command(event)
            seen.extend((piece, order_id) for order_id, piece in split.pieces)
            if split.broadcast is not None:
                seen.append((split.broadcast, None))
        else:
            seen.append((event, event.data.order_id))
    return seen


class InTimeOrder(random.Random):
    """A scheduler that delivers everything an input caused before the next input is routed,
    and routes inputs in time order: a global order, as one process would have."""

    simulation: Simulation | None = None
    RANK = {"assemble": 0, "allocate": 1, "adopt": 2, "route": 3}

    def choice(self, steps):
        def rank(step):
            kind, where = step
            if kind == "route":
                return (3, self.simulation.inputs[where][0][0].time, where)
            return (self.RANK[kind], 0, str(where))

        return min(steps, key=rank)


class Simulation:
    def __init__(self, route_tasks: int, partitions: int, assemblies: int, rng: random.Random,
                 settings=None, hold_wait: int = HOLD_WAIT) -> None:
        self.rng = rng
        if isinstance(rng, InTimeOrder):
            rng.simulation = self
        self.route_tasks = [
            RouteTask(p, route_tasks, partitions, settings, hold_wait=hold_wait,
                      task_of=lambda order_id: stable_shard(order_id, route_tasks))
            for p in range(route_tasks)
        ]
        self.allocation = [AllocationTask(q, route_tasks, settings) for q in range(partitions)]
        self.assembly = [AssemblyTask() for _ in range(assemblies)]
        self.inputs = [deque() for _ in range(route_tasks)]
        self.to_allocation: dict[tuple[str, int], deque] = defaultdict(deque)
        self.transfers: dict[tuple[int, int], deque] = defaultdict(deque)
        self.to_assembly: dict[tuple[int, int], deque] = defaultdict(deque)
        self.verdicts: dict[str, list[str]] = {}  # input id → applied, rejected, duplicate
        self.broadcast_verdicts: dict[str, set[str]] = {}
        self.published: list = []  # (id, change)
        self.refused_transfers: list = []  # (transfer, reason)
        self.routed = self.forwarded = 0

    def feed(self, seen) -> None:
        for event, key in seen:
            if key is None:
                for queue in self.inputs:
                    queue.append((event, True))
            else:
                self.inputs[stable_shard(key, len(self.inputs))].append((event, False))

    def run(self) -> None:
        while True:
            steps = [("route", p) for p, queue in enumerate(self.inputs) if queue]
            steps += [("adopt", key) for key, queue in self.transfers.items() if queue]
            steps += [("allocate", key) for key, queue in self.to_allocation.items() if queue]
            steps += [("assemble", key) for key, queue in self.to_assembly.items() if queue]
            if not steps:
                return
            kind, where = self.rng.choice(steps)
            getattr(self, "_" + kind)(where)
            self.stepped()

    def stepped(self) -> None:
        """Called after each step (a test may look at or rewrite the tasks' state)."""

    def _route(self, p: int) -> None:
        event, broadcast = self.inputs[p].popleft()
        routed = self.route_tasks[p].route(event, broadcast=broadcast)
        if broadcast:  # every route task decides it, and they must agree
            self.broadcast_verdicts.setdefault(event.id, set()).add(routed.status)
            if p:
                event = None
        self._routed(p, event, routed)

    def _adopt(self, key) -> None:
        source, target = key
        transfer = self.transfers[key].popleft()
        self._routed(target, None, self.route_tasks[target].adopt(transfer))

    def _routed(self, p: int, event, routed) -> None:
        if event is not None and routed.status != HELD:
            self.verdicts.setdefault(event.id, []).append(routed.status)
        for partition, envelope in routed.envelopes:
            self.to_allocation[(envelope.source, partition)].append(envelope)
            self.routed += 1
        for target, transfer in routed.transfers:
            self.transfers[(p, target)].append(transfer)
        self.refused_transfers.extend(routed.refused_transfers)
        for held, decided in routed.settled:  # sent after what decided them
            self._routed(p, held, decided)

    def _allocate(self, key) -> None:
        source, partition = key
        message = self.to_allocation[key].popleft()
        out = self.allocation[partition].receive(message)
        for target, arrival in out.forwards:
            self.to_allocation[(f"allocation{partition}", target)].append(arrival)
            self.forwarded += 1
        for partial in out.partials:
            task = stable_shard(partial.partial.order_id, len(self.assembly))
            self.to_assembly[(partition, task)].append(partial)

    def _assemble(self, key) -> None:
        partition, task = key
        message = self.to_assembly[key].popleft()
        self.published.extend(self.assembly[task].receive(message))

    # What the tests compare.

    def idle(self) -> bool:
        return all(task.idle() for task in self.route_tasks + self.allocation + self.assembly)

    def line_backorders(self) -> dict[tuple[str, str], int]:
        return {
            (order_id, line_id): line.published
            for task in self.allocation
            for order_id, order in task.engine.orders.items()
            for line_id, line in order.lines.items()
        }

    def line_dates(self) -> dict[tuple[str, str], int | None]:
        return {
            (order_id, line_id): task.engine.expected_date(line)
            for task in self.allocation
            for order_id, order in task.engine.orders.items()
            for line_id, line in order.lines.items()
        }

    def assembled(self) -> dict[str, tuple[str, dict]]:
        return {
            order_id: (order.status, {k: v for k, v in order.published.items() if v})
            for task in self.assembly
            for order_id, order in task.assembler.orders.items()
        }


def engine_run(seen) -> tuple[Engine, dict[str, str]]:
    """The one-process engine over the same inputs (commands split the same way)."""
    engine, verdicts = Engine(action_wait=None), {}
    for event, _ in seen:
        verdicts.setdefault(event.id, []).append(engine.handle(event).status)
    return engine, verdicts


def engine_lines(engine: Engine) -> dict[tuple[str, str], int]:
    return {
        (order_id, line_id): line.published
        for order_id, order in engine.orders.items()
        for line_id, line in order.lines.items()
    }


def follows_from_state(engine, line) -> bool:
    return (engine.settings.enable_backorder_workflow and line.pool is not None
            and not line.frozen and not line.manual)


def assert_equal(simulation: Simulation, engine, *, every_line: bool) -> None:
    lines, expected = simulation.line_backorders(), engine_lines(engine)
    assembled = simulation.assembled()
    for order_id, order in engine.orders.items():
        alike = [every_line or follows_from_state(engine, line) for line in order.lines.values()]
        for (line_id, line), same in zip(order.lines.items(), alike):
            if same:
                assert lines[(order_id, line_id)] == expected[(order_id, line_id)], (order_id, line_id)
        if all(alike) and engine.settings.enable_backorder_workflow:
            parts = [PartialLine(line_id, line.sku, line.qty, line.published)
                     for line_id, line in order.lines.items()]
            published = {part.line_id: part.backorder_qty for part in parts if part.backorder_qty}
            assert assembled.get(order_id, ("None", {})) == (status_of(parts), published), order_id
    if every_line:
        assert lines == expected
    for (order_id, line_id), date in simulation.line_dates().items():  # where each line lives now
        theirs = engine.orders[order_id].lines[line_id]
        if every_line or follows_from_state(engine, theirs):
            assert date == engine.expected_date(theirs), (order_id, line_id)
