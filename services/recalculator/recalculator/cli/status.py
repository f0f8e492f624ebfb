"""`backorders status`: consumer lag per input partition, dead letters, outbox backlog."""

from __future__ import annotations

import asyncio
import json
import os

from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from ..adapters import tables as t
from ..adapters.repository import Repository, make_engine
from ..kafka.relay import RELAY_SOURCE
from ..kafka.settings import InputTopics, KafkaSettings
from ..kafka.worker import lag_of
from .common import add_db_option, database_url


def register(commands) -> None:
    parser = commands.add_parser("status", help="lag, dead letters and outbox backlog")
    add_db_option(parser)
    parser.add_argument("--schema", help="PostgreSQL schema holding the state")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
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


async def lag(positions: dict[str, int]) -> dict[str, int]:
    consumer = AIOKafkaConsumer(**KafkaSettings().client_options(), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = []
        for topic in InputTopics().all():
            for partition in sorted(consumer.partitions_for_topic(topic) or ()):
                partitions.append(TopicPartition(topic, partition))
        ends = await consumer.end_offsets(partitions) if partitions else {}
    finally:
        await consumer.stop()
    return lag_of(ends, positions)


def handle(args) -> int:
    with_kafka = bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    report = asyncio.run(gather(database_url(args.db), args.schema, with_kafka))
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0
    console = Console()
    console.print(
        f"dead letters: {report['dead_letters']}   outbox: {report['outbox_events']} events, "
        f"{report['outbox_backlog']} not yet relayed"
    )
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
