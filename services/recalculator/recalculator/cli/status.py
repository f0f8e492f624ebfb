"""`backorders status`: consumer lag per input partition, dead letters, outbox backlog."""

from __future__ import annotations

import asyncio
import json
import os

from aiokafka import AIOKafkaConsumer, TopicPartition
from backorder_events.topics import InputTopics
from backorders_platform.commands import add_db_option, database_url, options
from backorders_platform.database import make_engine
from backorders_platform.kafka_settings import KafkaSettings
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from ..adapters import tables as t
from ..adapters.repository import Repository
from ..kafka.relay import RELAY_SOURCE
from ..kafka.worker import lag_of
from .options import ShardOptions


def register(commands) -> None:
    parser = commands.add_parser("status", help="lag, dead letters and outbox backlog")
    add_db_option(parser)
    parser.add_argument("--schema", help="PostgreSQL schema holding the state")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--shards", type=int,
        help="the SKU-sharded recalculator with this many shards, --schema being its base: "
             "every stage's dead letters and outbox, the work waiting between stages, the live workers "
             "(default: $BACKORDERS_SHARDS or 0)",
    )
    parser.set_defaults(handler=handle)


async def gather(url: str, schema: str | None, with_kafka: bool) -> dict:
    db = make_engine(url, schema)
    try:
        repository = Repository(db, schema)
        await repository.create_schema()
        positions = await repository.positions()
        async with db.connect() as conn:
            dead = (await conn.execute(select(func.count()).select_from(t.dead_letters))).scalar_one()
            last_seq = (await conn.execute(select(func.max(t.outbox.c.seq)))).scalar() or 0
    finally:
        await db.dispose()
    report = {
        "dead_letters": dead,
        "outbox_events": last_seq,
        "outbox_backlog": last_seq - positions.get(RELAY_SOURCE, 0),
        "lag": {},
    }
    if with_kafka:
        report["lag"] = await lag(positions)
    return report


async def gather_sharded(url: str, base: str, shards: int, with_kafka: bool) -> dict:
    """The same report over the stages of a sharded recalculator (docs/sharding.md): dead
    letters are the router's, the outbox is every stage's, and the work waiting between
    stages and the live workers come from the pipeline schema."""
    from ..adapters import pipeline_tables as pt
    from ..kafka import sharded

    stages = {"router": sharded.router_schema(base), "assembler": sharded.assembler_schema(base)}
    stages.update({f"shard {p}": sharded.shard_schema(base, p) for p in range(shards)})
    report: dict = {"dead_letters": 0, "outbox_events": 0, "outbox_backlog": 0, "lag": {},
                    "outbox_backlog_by_stage": {}, "router_positions": {}}
    for stage, schema in stages.items():
        db = make_engine(url, schema)
        try:
            positions = await Repository(db, schema).positions()
            async with db.connect() as conn:
                last_seq = (await conn.execute(select(func.max(t.outbox.c.seq)))).scalar() or 0
                if stage == "router":
                    report["dead_letters"] = (
                        await conn.execute(select(func.count()).select_from(t.dead_letters))
                    ).scalar_one()
                    report["router_positions"] = positions
        except Exception:  # noqa: BLE001 - a stage no worker has started yet
            continue
        finally:
            await db.dispose()
        report["outbox_events"] += last_seq
        report["outbox_backlog_by_stage"][stage] = last_seq - positions.get(RELAY_SOURCE, 0)
    report["outbox_backlog"] = sum(report["outbox_backlog_by_stage"].values())
    db = make_engine(url, base)
    try:
        async with db.connect() as conn:
            waiting = dict((await conn.execute(
                select(pt.routed.c.shard, func.count()).group_by(pt.routed.c.shard)
            )).all())
            report["routed_waiting_by_shard"] = {str(p): waiting.get(p, 0) for p in range(shards)}
            report["causes_waiting"] = (await conn.execute(select(func.count()).select_from(pt.causes))).scalar_one()
            report["handoffs_waiting"] = (await conn.execute(select(func.count()).select_from(pt.handoffs))).scalar_one()
            live = await sharded.live_workers(conn, await sharded.database_micros(conn))
            report["live_workers"] = {worker: roles or "shards" for worker, roles in live}
    finally:
        await db.dispose()
    if with_kafka:
        report["lag"] = await lag(report["router_positions"])
    del report["router_positions"]
    return report


async def lag(positions: dict[str, int]) -> dict[str, int]:
    topics = InputTopics().all()
    # Given the topics (never fetched from: nothing is polled), the client has their metadata
    # at once; a bare consumer could be stopped before its start-up work ended, which
    # aiokafka reports as a cancellation.
    consumer = AIOKafkaConsumer(*topics, **KafkaSettings().client_options(), group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = []
        for topic in topics:
            for partition in sorted(consumer.partitions_for_topic(topic) or ()):
                partitions.append(TopicPartition(topic, partition))
        ends = await consumer.end_offsets(partitions) if partitions else {}
    finally:
        await consumer.stop()
    return lag_of(ends, positions)


def handle(args) -> int:
    shards = options(ShardOptions, args, "shards").shards
    with_kafka = bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    if shards:
        report = asyncio.run(gather_sharded(database_url(args.db), args.schema or "backorders", shards, with_kafka))
    else:
        report = asyncio.run(gather(database_url(args.db), args.schema, with_kafka))
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0
    console = Console()
    console.print(
        f"dead letters: {report['dead_letters']}   outbox: {report['outbox_events']} events, "
        f"{report['outbox_backlog']} not yet relayed"
    )
    if "live_workers" in report:
        console.print(
            f"waiting between stages: {sum(report['routed_waiting_by_shard'].values())} routed records "
            f"(by shard {report['routed_waiting_by_shard']}), {report['causes_waiting']} inputs to assemble, "
            f"{report['handoffs_waiting']} hand-overs"
        )
        console.print(f"live workers: {report['live_workers'] or 'none'}")
    if report["lag"]:
        table = Table(title="Consumer lag per input partition")
        table.add_column("topic:partition")
        table.add_column("lag", justify="right")
        for key, value in report["lag"].items():
            table.add_row(key, str(value))
        console.print(table)
    elif not with_kafka:
        console.print("consumer lag: set KAFKA_BOOTSTRAP_SERVERS to read it from the broker")
    return 0
