"""The partitioned recalculator (`PartitionedWorker`: sequencer, route, allocation and
assembly stages on consumer groups) on a real broker and PostgreSQL, against `replay` of
the same log: one and two members in one process, 3 route partitions, 6 allocation
partitions, 3 assembly partitions; and the layout check."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter

import pytest
from aiokafka.partitioner import DefaultPartitioner
from backorders_platform.kafka_settings import KafkaSettings
from backorders_workload import WorkloadShape, generate_day
from integration.conftest import _drop_schema, kafka_bootstrap, postgres_url
from partitioned_simulation import follows_from_state
from partitioned_worker_support import (
    ALLOCATION,
    ASSEMBLY,
    GROUP_OPTIONS,
    create_partitioned_topics,
    final_commands,
    output_topics,
    settle,
    shaped_day,
    stage_schemas,
    state,
)
from recalculator.cli.worker import produce
from recalculator.domain.engine import Engine
from recalculator.domain.results import PartialLine
from recalculator.domain.assembler import status_of
from recalculator.kafka.partitioned_route import key_partition
from recalculator.kafka.partitioned_worker import LayoutChanged, PartitionedWorker, internal_topic
from recalculator.kafka.topic_admin import delete_topics
from recalculator.processing import process
from recalculator.publishing import to_json
from recalculator.runtime.sequencing import in_log_order


def test_route_tasks_own_the_partition_a_producer_gives_an_order_id():
    partitioner = DefaultPartitioner()
    for n in (1, 3, 6, 24):
        for i in range(300):
            key = f"order-{i}"
            assert key_partition(key, n) == partitioner(key.encode(), list(range(n)), list(range(n)))


def day(seed: int, orders: int) -> tuple[list[bytes], Engine]:
    events = shaped_day(generate_day(seed, WorkloadShape(orders=orders)))
    lines = [(e["__raw__"] if "__raw__" in e else to_json(e)).encode() for e in events]
    last = max(json.loads(line)["time"] for line in lines if _timed(line))
    lines += [to_json(command).encode() for command in final_commands(last)]
    expected = Engine()
    for item in in_log_order(enumerate(lines, 1)):
        process(expected, item.raw, "log", item.line, parsed=item.parsed)
    return lines, expected


def _timed(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line).get("time"), str)
    except (ValueError, AttributeError):
        return False


def assert_like_replay(lines: dict, assembled: dict, engine: Engine) -> int:
    """Every line whose value follows from the state equals the engine's, and so does every
    order made only of such lines; returns how many orders were compared whole."""
    whole = 0
    for order_id, order in engine.orders.items():
        alike = [follows_from_state(engine, line) for line in order.lines.values()]
        for (line_id, line), same in zip(order.lines.items(), alike):
            if same:
                assert lines.get((order_id, line_id)) == line.published, (order_id, line_id)
        if all(alike) and engine.settings.enable_backorder_workflow:
            parts = [PartialLine(line_id, line.sku, line.qty, line.published) for line_id, line in order.lines.items()]
            published = {part.line_id: part.backorder_qty for part in parts if part.backorder_qty}
            assert assembled.get(order_id, ("None", {})) == (status_of(parts), published), order_id
            whole += 1
    return whole


class Deployment:
    def __init__(self) -> None:
        self.url, self.servers = postgres_url(), kafka_bootstrap()
        self.base = f"pw_{uuid.uuid4().hex[:10]}"
        self.kafka = KafkaSettings(bootstrap_servers=self.servers)
        self.inputs = self.outputs = None

    async def start(self) -> None:
        self.inputs = await create_partitioned_topics(self.servers)
        self.outputs = output_topics()

    def worker(self, **options) -> PartitionedWorker:
        return PartitionedWorker(self.url, self.base, kafka=self.kafka, inputs=self.inputs, outputs=self.outputs,
                                 allocation_partitions=options.pop("allocation", ALLOCATION),
                                 assembly_partitions=ASSEMBLY, batch_size=200, consumer_options=GROUP_OPTIONS,
                                 **options)

    async def close(self) -> None:
        for schema in [self.base, *stage_schemas(self.base)]:
            await _drop_schema(self.url, schema)
        internal = [internal_topic(self.base, name) for name in ("order-commands", "global", "allocation", "partials")]
        await delete_topics(self.kafka, [*self.inputs.all(), *internal, self.outputs.backorder_changed,
                                         self.outputs.product_backorder_changed, self.outputs.sku_position_changed,
                                         self.outputs.dead_letters])


@pytest.fixture
async def deployment():
    deployment = Deployment()
    await deployment.start()
    try:
        yield deployment
    finally:
        await deployment.close()


@pytest.mark.parametrize("members", [1, 2])
async def test_the_partitioned_worker_ends_as_replay(deployment, members):
    lines, expected = day(7, 150)
    stop = asyncio.Event()
    workers = [deployment.worker() for _ in range(members)]
    runs = [asyncio.create_task(worker.run(stop)) for worker in workers]
    try:
        await produce(lines, deployment.kafka, deployment.inputs)
        await settle(deployment.url, deployment.base, deployment.servers, deployment.inputs)
    finally:
        stop.set()
        await asyncio.gather(*runs)
    got_lines, assembled, ids, dead, busy = await state(deployment.url, deployment.base)
    assert busy == 0, "a task still waits for a hand-over, holds an input or a part"
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    assert not duplicates, duplicates[:5]
    assert len(got_lines) == sum(len(order.lines) for order in expected.orders.values())
    whole = assert_like_replay(got_lines, assembled, expected)
    assert whole > 100
    assert dead > 0  # the generated day's bad inputs
    if members > 1:  # both members took part in every internal stage
        for name in ("allocation", "assembly"):
            assert all(worker.runners[name].stage.applied for worker in workers), name


async def test_a_worker_refuses_other_partition_counts_than_the_state_was_built_with(deployment):
    await deployment.worker().prepare()
    with pytest.raises(LayoutChanged, match="rebuild"):
        await deployment.worker(allocation=ALLOCATION + 1).prepare()


async def test_inputs_held_for_their_order_are_dead_lettered_under_their_own_place(deployment):
    """An input naming an order its route task does not know waits for it (`hold_wait`).
    Refused when it is released (dated before the order's creation) or when its wait ends
    (here with a global record, which every route task routes): either way the dead letter
    is written by the route task that read it, under the place it was read from."""
    from integration.conftest import consume_all

    from recalculator.adapters import tables as t
    from recalculator.kafka.partitioned import task_schema
    from backorders_platform.database import make_engine
    from sqlalchemy import select
    from partitioned_worker_support import ROUTE

    created_late, never = (next(f"{name}-{i}" for i in range(100) if key_partition(f"{name}-{i}", ROUTE) != 0)
                           for name in ("late", "never"))

    def event(event_id: str, kind: str, seconds: int, data: dict) -> bytes:
        time = f"2030-01-01T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}Z"
        return to_json({"specversion": "1.0", "id": event_id, "source": "/tests", "type": kind, "time": time,
                        "data": data}).encode()

    lines = [
        event("before-its-order", "OrderStatusChanged", 1, {"order_id": created_late, "rush": True}),
        event("for-no-order", "OrderStatusChanged", 2, {"order_id": never, "rush": True}),
        event("the-order", "OrderCreated", 5, {"order_id": created_late, "order_date": "2030-01-01T00:00:05Z",
                                              "payment_status": "Charged",
                                              "lines": [{"line_id": "1", "sku": "A", "qty": 1}]}),
        event("after-the-wait", "WarehouseUpserted", 3600, {"warehouse_id": "W9", "type": "Sellable"}),
    ]
    stop = asyncio.Event()
    run = asyncio.create_task(deployment.worker(hold_wait=60_000_000).run(stop))
    try:
        await produce(lines, deployment.kafka, deployment.inputs)
        await settle(deployment.url, deployment.base, deployment.servers, deployment.inputs)
    finally:
        stop.set()
        await run
    read_at = {json.loads(r.value)["id"]: (r.topic, r.partition, r.offset)
               for r in await consume_all(deployment.servers, [deployment.inputs.orders], 3)}
    letters = {}
    for p in range(ROUTE):
        db = make_engine(deployment.url, task_schema(deployment.base, "route", p))
        try:
            async with db.connect() as conn:
                for row in await conn.execute(select(t.dead_letters)):
                    letters[row.event_id] = (p, row.source, row.partition, row.position, row.reason)
        finally:
            await db.dispose()
    assert set(letters) == {"before-its-order", "for-no-order"}, (letters, await state(deployment.url, deployment.base))
    for event_id, order_id in (("before-its-order", created_late), ("for-no-order", never)):
        task, *place, reason = letters[event_id]
        assert tuple(place) == read_at[event_id] and task == read_at[event_id][1] != 0
        assert "unknown order" in reason and order_id in reason
    _, _, _, _, busy = await state(deployment.url, deployment.base)
    assert busy == 0
