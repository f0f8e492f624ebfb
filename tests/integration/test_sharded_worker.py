"""The SKU-sharded recalculator on a real Kafka broker and PostgreSQL: seed examples and a
generated day produced to the input topics (several partitions), processed by one and by two
workers sharing four shards, then a full recalculation once the inputs are consumed: the
state per order equals `replay` of the same log, and no output id is published twice."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from backorder_events.topics import InputTopics, OutputTopics
from backorders_platform.database import make_engine
from backorders_platform.kafka_settings import KafkaSettings
from backorders_workload import WorkloadShape
from integration.conftest import (
    _drop_schema,
    consume_all,
    day_and_expected,
    kafka_bootstrap,
    postgres_url,
)
from integration.test_kafka_worker import create_topics
from recalculator.adapters.repository import Repository
from recalculator.cli.worker import produce
from recalculator.domain.engine import Engine
from recalculator.domain.model import NONE
from recalculator.kafka import sharded
from recalculator.kafka.worker import lag_of
from recalculator.processing import process
from recalculator.publishing import to_json
from support import created, event, stock

SHARDS = 4


def output_topics() -> OutputTopics:
    suffix = uuid.uuid4().hex[:10]
    return OutputTopics(
        backorder_changed=f"out.bc.{suffix}", product_backorder_changed=f"out.pbc.{suffix}",
        sku_position_changed=f"out.pos.{suffix}", dead_letters=f"out.dlq.{suffix}",
    )


async def router_lag(consumer: AIOKafkaConsumer, url: str, base: str, topics: InputTopics) -> int:
    await consumer._client.force_metadata_update()
    partitions = [TopicPartition(t, p) for t in topics.all() for p in consumer.partitions_for_topic(t) or ()]
    ends = await consumer.end_offsets(partitions)
    db = make_engine(url, sharded.router_schema(base))
    try:
        stored = await Repository(db, sharded.router_schema(base)).positions()
    finally:
        await db.dispose()
    return sum(lag_of(ends, stored).values())


async def settle(url: str, base: str, kafka: KafkaSettings, topics: InputTopics, deadline: float = 180) -> None:
    """Until the router has read every input and no stage has work left."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    consumer = AIOKafkaConsumer(*topics.all(), **kafka.client_options(), group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        while True:
            try:
                lag = await router_lag(consumer, url, base, topics)
                backlog = await sharded.backlog(url, base)
            except Exception:  # noqa: BLE001 - the schemas appear with the first worker
                lag, backlog = -1, {}
            if lag == 0 and backlog and not any(backlog.values()):
                return
            assert loop.time() < end, f"the pipeline did not settle: lag {lag}, backlog {backlog}"
            await asyncio.sleep(0.25)
    finally:
        await consumer.stop()


def expected_state(engine) -> dict[str, tuple[str, dict[str, int]]]:
    return {
        order.order_id: (
            order.published_status,
            {line_id: line.published for line_id, line in order.lines.items() if line.published},
        )
        for order in engine.orders.values()
    }


def assembled(state: dict) -> dict[str, tuple[str, dict[str, int]]]:
    return {order_id: (status, {k: v for k, v in lines.items() if v}) for order_id, (status, lines) in state.items()}


async def run_workers(count: int, lines, final, *, shape_note: str = "") -> tuple[dict, list, str, str]:
    servers, url = kafka_bootstrap(), postgres_url()
    base = f"sh_{uuid.uuid4().hex[:10]}"
    topics = await create_topics(servers)
    outputs = output_topics()
    kafka = KafkaSettings(bootstrap_servers=servers)
    stop = asyncio.Event()
    workers = [
        sharded.ShardedWorker(url, base=base, shards=SHARDS, kafka=kafka, topics=topics, outputs=outputs,
                              batch_size=200, worker_id=f"w{n}")
        for n in range(count)
    ]
    runs = [asyncio.create_task(worker.run(stop)) for worker in workers]
    try:
        await produce(lines, kafka, topics)
        await settle(url, base, kafka, topics)
        await produce([final], kafka, topics)
        await settle(url, base, kafka, topics)
        if count > 1 and len(lines) > 100:
            # The work really was spread: one worker routes, the other holds every shard.
            routers = [worker for worker in workers if "router" in worker.roles]
            assert len(routers) == 1 and not routers[0].held, [(w.roles, sorted(w.held)) for w in workers]
            assert set().union(*(worker.held for worker in workers)) == set(range(SHARDS))
        state = await sharded.assembled_state(url, base)
        stop.set()
        await asyncio.gather(*runs)
        published = await consume_all(servers, [outputs.backorder_changed], expected=1, timeout_ms=3000)
        return state, published, url, base, (kafka, topics, outputs)
    finally:
        stop.set()
        await asyncio.gather(*runs, return_exceptions=True)


async def drop_all(url: str, base: str) -> None:
    for schema in [base, sharded.router_schema(base), sharded.assembler_schema(base),
                   *(sharded.shard_schema(base, p) for p in range(SHARDS))]:
        await _drop_schema(url, schema)


def seed_log():
    """The seed's worked examples (tests/unit/rules/test_rules_seed_examples.py) as one log,
    each on SKUs of its own; the 40/10 example once plain and once fully-shippable."""
    def po(sku, qty):
        return event("POReceived", {"po_id": "PO-1", "warehouse_id": "W1", "lines": [{"sku": sku, "qty": qty}]})

    log = [
        created("5145827", [("1", "cat-hammock", 2)], payment_status="Charged",
                date="2023-08-16T18:30:00Z", company_id="Thirsty Tea"),
        po("cat-hammock", 2),
        created("newer", [("1", "X", 3)], date="2025-04-02T10:00:00Z"),
        created("older", [("1", "X", 3)], date="2025-04-01T10:00:00Z"),
        po("X", 3),
        stock("Y", 10),
        created("older-40", [("1", "Y", 40)], date="2025-04-01T10:00:00Z"),
        created("newer-10", [("1", "Y", 10)], date="2025-04-02T10:00:00Z"),
        stock("Z", 10),
        created("z-older-40", [("1", "Z", 40)], date="2025-04-01T10:00:00Z"),
        created("z-newer-10", [("1", "Z", 10)], date="2025-04-02T10:00:00Z"),
        event("SettingsChanged", {"settings": {"prioritize_fully_shippable": True}}),
        event("RecalculateBackorders", {"skus": ["Z"]}),
    ]
    lines = [to_json(e).encode() for e in log]
    final = to_json(event("RecalculateBackorders", {}, id="final-recalc")).encode()
    expected = Engine(action_wait=None)  # as the sharded router: docs/sharding.md
    for n, raw in enumerate([*lines, final], 1):
        process(expected, raw, "log", n)
    return lines, final, expected


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("workload", ["seed examples", "generated day"])
async def test_sharded_workers_reach_the_state_of_replay(workload, workers):
    if workload == "seed examples":
        lines, final, expected = seed_log()
    else:
        lines, final, expected = day_and_expected(11, WorkloadShape(orders=400, skus=40))
    state, published, url, base, servers = await run_workers(workers, lines, final)
    try:
        want = expected_state(expected)
        got = assembled(state)
        # Orders never published keep the assembler's default (None, nothing backordered).
        for order_id in want.keys() - got.keys():
            got[order_id] = (NONE, {})
        assert got == want
        ids = [json.loads(record.value)["id"] for record in published]
        assert ids and len(ids) == len(set(ids)), "an output id was published twice"
        if workers == 1 and workload == "generated day":
            # `backorders rebuild --shards`: every stage emptied, the topics consumed again.
            kafka, topics, outputs = servers
            applied = await sharded.rebuild(url, base, SHARDS, kafka=kafka, topics=topics, outputs=outputs)
            rebuilt = assembled(await sharded.assembled_state(url, base))
            for order_id in want.keys() - rebuilt.keys():
                rebuilt[order_id] = (NONE, {})
            assert applied > 0 and rebuilt == want
    finally:
        await drop_all(url, base)


async def test_a_router_started_alone_sets_up_the_pipeline_it_writes_to():
    """The router's worker on a fresh base, with no other stage started before it: it makes
    the pipeline's tables itself (it waited for them for ever when the worker's start only
    migrated its own schema), then routes the log."""
    servers, url = kafka_bootstrap(), postgres_url()
    base = f"router_{uuid.uuid4().hex[:8]}"
    topics = await create_topics(servers)
    kafka = KafkaSettings(bootstrap_servers=servers)
    log = [stock("SKU-R", 1), created("r1", [("1", "SKU-R", 2)])]
    await produce([to_json(e).encode() for e in log], kafka, topics)

    async def route() -> None:
        async with sharded.RouterWorker(url, base, 2, kafka=kafka, topics=topics) as router:
            await router.catch_up()

    try:
        await asyncio.wait_for(route(), 90)  # the start included: it used to wait for ever
        db = make_engine(url)
        try:
            async with db.connect() as conn:
                routed = (await conn.exec_driver_sql(f'select count(*) from "{base}".routed')).scalar()
        finally:
            await db.dispose()
        assert routed >= 2
    finally:
        for schema in sharded.all_schemas(base, 2):
            await _drop_schema(url, schema)
