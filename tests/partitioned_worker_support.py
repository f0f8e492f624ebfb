"""What the partitioned worker's tests share: a generated day shaped for it, topics made for
it, how far behind its stages are, and its state as the comparison with replay needs.

Run as a script (`python partitioned_worker_support.py URL BASE SERVERS TOPICS_JSON`), it runs
one worker process until killed or sent SIGTERM (the kill tests)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import uuid
from datetime import datetime, timedelta

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from backorder_events.topics import InputTopics, OutputTopics
from backorders_platform.database import make_engine
from backorders_platform.kafka_settings import KafkaSettings
from sqlalchemy import func, select

ROUTE, ALLOCATION, ASSEMBLY = 3, 6, 3
LAST_BEHIND: dict = {}  # what was behind at the last look, for the failure message
GROUP_OPTIONS = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000, "max_poll_interval_ms": 60000}


SPLIT = ("RecalculateBackorders", "MarkBackorder", "MarkNotBackorder")


def shaped_day(events: list[dict]) -> list[dict]:
    """A generated day as the partitioned recalculator needs it (docs/sharding.md, "Known
    differences"): a receipt naming several SKUs becomes one receipt per SKU (each SKU's
    stock inputs then share a partition), and a command naming several orders one command
    per order (the partitioned recalculator applies them order by order; `replay` refuses
    the whole command when one order is unknown)."""
    shaped = []
    for event in events:
        data = event.get("data")
        if event.get("type") in SPLIT and "__raw__" not in event and isinstance(data, dict):
            orders = list(dict.fromkeys(data.get("order_ids") or ()))
            skus = data.get("skus") or []
            if len(orders) + (1 if skus else 0) > 1:
                for order_id in orders:
                    part = {**data, "order_ids": [order_id]}
                    if "skus" in data:
                        part["skus"] = []
                    shaped.append({**event, "id": f"{event['id']}/{order_id}", "data": part})
                if skus:
                    shaped.append({**event, "id": f"{event['id']}/skus", "data": {**data, "order_ids": [], "skus": skus}})
                continue
        lines = data.get("lines") if isinstance(data, dict) else None
        if event.get("type") == "POReceived" and isinstance(lines, list) and "__raw__" not in event:
            skus = list(dict.fromkeys(line.get("sku") for line in lines if isinstance(line, dict)))
            if len(skus) > 1:
                for sku in skus:
                    part = [line for line in lines if line.get("sku") == sku]
                    shaped.append({**event, "id": f"{event['id']}/{sku}", "data": {**data, "lines": part}})
                continue
        shaped.append(event)
    return shaped


def final_commands(last_time: str) -> list[dict]:
    """A full recalculation a minute after the last input, then a recalculation of a SKU no
    line has a year later: it ends the wait of inputs held for orders that never came."""
    last = datetime.fromisoformat(last_time.replace("Z", "+00:00"))

    def command(name: str, after: timedelta, data: dict) -> dict:
        return {"specversion": "1.0", "id": name, "source": "/tests", "type": "RecalculateBackorders",
                "time": (last + after).isoformat().replace("+00:00", "Z"), "data": data}

    return [command("final-recalculation", timedelta(minutes=1), {}),
            command("end-of-waits", timedelta(days=366), {"skus": ["no line has this SKU"]})]


async def create_partitioned_topics(servers: str, route: int = ROUTE) -> InputTopics:
    suffix = uuid.uuid4().hex[:10]
    topics = InputTopics(orders=f"in.orders.{suffix}", inventory=f"in.inventory.{suffix}",
                         reference=f"in.reference.{suffix}", commands=f"in.commands.{suffix}")
    counts = {topics.orders: route, topics.inventory: route, topics.reference: 2, topics.commands: 1}
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=count, replication_factor=1)
                                   for name, count in counts.items()])
    finally:
        await admin.close()
    return topics


def output_topics() -> OutputTopics:
    suffix = uuid.uuid4().hex[:10]
    return OutputTopics(backorder_changed=f"out.bc.{suffix}", product_backorder_changed=f"out.pbc.{suffix}",
                        sku_position_changed=f"out.pos.{suffix}", dead_letters=f"out.dlq.{suffix}")


def stage_schemas(base: str) -> list[str]:
    from recalculator.kafka.partitioned_worker import schemas_of

    return schemas_of(base, ROUTE, ALLOCATION, ASSEMBLY)


async def behind(url: str, base: str, servers: str, inputs: InputTopics) -> int:
    """Records not yet applied by their stage, over every topic of every stage, plus
    internal records not yet relayed and global records a route task has not read
    (`backlog_parts`; where they are in `LAST_BEHIND`)."""
    from recalculator.kafka.partitioned_worker import NOT_READY, backlog_parts

    parts = await backlog_parts(url, base, KafkaSettings(bootstrap_servers=servers), inputs)
    if parts is None:
        return NOT_READY  # the worker has not made its topics or tables yet
    LAST_BEHIND.clear()
    LAST_BEHIND.update(parts)
    return sum(parts.values())


async def settle(url: str, base: str, servers: str, inputs: InputTopics, deadline: float = 240.0) -> None:
    """Until nothing is behind twice in a row, a second apart."""
    loop = asyncio.get_running_loop()
    end, quiet = loop.time() + deadline, 0
    while quiet < 2:
        left = await behind(url, base, servers, inputs)
        quiet = quiet + 1 if left == 0 else 0
        if loop.time() > end:
            raise AssertionError(f"the partitioned worker did not settle within {deadline:.0f} s: {left} behind: "
                                 f"{LAST_BEHIND}")
        await asyncio.sleep(1.0)


async def state(url: str, base: str) -> tuple[dict, dict, list[str], int, int]:
    """(line backorders by (order, line) over the allocation partitions, assembled orders as
    (status, published lines), every output id of every outbox, dead letters, tasks not
    idle)."""
    from recalculator.adapters.partitioned_codec import load_allocation_state, load_assembly_state, load_route_state
    from recalculator.adapters.repository import Repository
    from recalculator.domain.partitioned import AllocationTask, AssemblyTask, RouteTask
    from recalculator.kafka.partitioned import task_schema
    from recalculator.kafka.sharded import assembled_order
    from recalculator.adapters import pipeline_tables as pt
    from recalculator.adapters import tables as t

    lines, assembled, ids, dead, busy = {}, {}, [], 0, 0
    for schema in stage_schemas(base):
        db = make_engine(url, schema)
        try:
            async with db.connect() as conn:
                ids += (await conn.execute(select(t.outbox.c.event_id))).scalars().all()
                dead += (await conn.execute(select(func.count()).select_from(t.dead_letters))).scalar()
                protocol = (await conn.execute(select(t.meta.c.key, t.meta.c.value))).all()
                meta = dict(protocol)
                if "_allocation" in schema:
                    task = AllocationTask(0, ROUTE)
                    await Repository(None).load(task.engine, conn)
                    if "allocation" in meta:
                        load_allocation_state(task, meta["allocation"])
                    busy += not task.idle()
                    for order in task.engine.orders.values():
                        for line_id, line in order.lines.items():
                            lines[(order.order_id, line_id)] = line.published
                elif "_assembly" in schema:
                    task = AssemblyTask()
                    if "assembly" in meta:
                        load_assembly_state(task, meta["assembly"])
                    busy += not task.idle()
                    for row in await conn.execute(select(pt.assembled_orders)):
                        order = assembled_order(row)
                        assembled[row.order_id] = (order.status, {line_id: qty for line_id, qty in order.published.items() if qty})
                elif "_route" in schema and "route" in meta:
                    task = RouteTask(0, ROUTE, ALLOCATION)
                    load_route_state(task, meta["route"])
                    busy += not task.idle()
        finally:
            await db.dispose()
    del task_schema
    return lines, assembled, ids, dead, busy


async def _main(url: str, base: str, servers: str, topics_json: str) -> None:
    from recalculator.kafka.partitioned_worker import PartitionedWorker

    names = json.loads(topics_json)
    worker = PartitionedWorker(url, base, kafka=KafkaSettings(bootstrap_servers=servers),
                               inputs=InputTopics(**names["inputs"]), outputs=OutputTopics(**names["outputs"]),
                               allocation_partitions=ALLOCATION, assembly_partitions=ASSEMBLY, batch_size=200,
                               consumer_options=GROUP_OPTIONS)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await worker.run(stop)


if __name__ == "__main__":
    asyncio.run(_main(*sys.argv[1:5]))
