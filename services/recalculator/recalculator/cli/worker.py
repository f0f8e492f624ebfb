"""`backorders worker recalculator`: the recalculator on Kafka, with its state in SQL
(`DATABASE_URL` or `--db`), plus `backorders produce` to publish a log to the input topics.
The `worker` command itself, which gathers every service's worker, is the composition
root's (`backorders_app.worker`)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from aiokafka import AIOKafkaProducer
from backorder_events.topics import InputTopics
from backorders_platform import locks, logs
from backorders_platform.commands import CommandError, add_db_option, database_url, options
from backorders_platform.kafka_settings import KafkaSettings

from .. import metrics
from ..kafka.worker import RecalculatorWorker
from ..ordering import DEFAULT_IDLE_BOUND_MS
from .options import WorkerOptions

log = logs.get("recalculator.worker")


def register_worker(kinds) -> None:
    """`backorders worker recalculator`: added to the `worker` command's services."""
    recalculator = kinds.add_parser("recalculator", help="the allocation worker")
    add_db_option(recalculator)
    recalculator.add_argument("--schema", help="PostgreSQL schema holding the state (default: the search path)")
    recalculator.add_argument("--batch-size", type=int, default=1000)
    recalculator.add_argument(
        "--recalc-every-minutes", type=float,
        help="periodic full recalculation, published to the commands topic (0: off; default: "
             "$BACKORDERS_RECALC_EVERY_MINUTES or 30)",
    )
    recalculator.add_argument(
        "--shards", type=int,
        help="run the SKU-sharded recalculator with this many shards, shared out among the "
             "workers started with the same --schema (0: one active worker; default: "
             "$BACKORDERS_SHARDS or 0; docs/sharding.md)",
    )
    recalculator.add_argument(
        "--partitioned", action="store_true",
        help="run a member of the partitioned recalculator (every stage on Kafka's consumer groups, "
             "state per task partition under --schema; docs/sharding.md)",
    )
    recalculator.add_argument("--allocation-partitions", type=int, default=6,
                              help="with --partitioned: partitions of the allocation topic (default 6)")
    recalculator.add_argument("--assembly-partitions", type=int, default=6,
                              help="with --partitioned: partitions of the order partials topic (default 6)")
    recalculator.add_argument(
        "--idle-bound-ms", type=float,
        help="how long an input partition found empty must stay so before records of a later "
             "time on other partitions go past it (default: $BACKORDERS_IDLE_BOUND_MS or 50; "
             "docs/behaviour.md, order of application)",
    )
    recalculator.add_argument(
        "--metrics-port", type=int,
        help="Prometheus /metrics port (0: off; default: $BACKORDERS_METRICS_PORT or 9464)",
    )
    recalculator.set_defaults(handler=handle_worker)


def register(commands) -> None:
    produce = commands.add_parser("produce", help="publish a CloudEvents log to the input topics")
    produce.add_argument("events", help="JSON lines, or - for stdin")
    produce.set_defaults(handler=handle_produce)


async def run_worker(
    url: str, batch_size: int, schema: str | None = None, recalc_minutes: float = 0, shards: int = 0,
    idle_bound_ms: float = DEFAULT_IDLE_BOUND_MS, partitioned: tuple[int, int] | None = None,
) -> None:
    """Until SIGINT or SIGTERM. A standby waiting for the lock stops waiting then, and the
    process ends as a running worker does (exit code 0)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if shards and not url.startswith("postgresql"):
        raise CommandError("the sharded recalculator keeps its state in PostgreSQL (--db)")
    if partitioned is not None:
        if not url.startswith("postgresql"):
            raise CommandError("the partitioned recalculator keeps its state in PostgreSQL (--db)")
        from ..kafka.partitioned_worker import PartitionedWorker

        allocation, assembly = partitioned
        worker = PartitionedWorker(url, schema or "backorders", allocation_partitions=allocation,
                                   assembly_partitions=assembly, batch_size=batch_size)
        await worker.prepare()
        await worker.run(stop)
        return
    with locks.waits_end_with(stop):
        try:
            if shards:
                from ..kafka.sharded import ShardedWorker

                sharded = ShardedWorker(url, base=schema or "backorders", shards=shards, batch_size=batch_size,
                                        recalc_every_seconds=recalc_minutes * 60)
                await sharded.run(stop)
                return
            worker = RecalculatorWorker(
                url, schema=schema, batch_size=batch_size, recalc_every_seconds=recalc_minutes * 60,
                idle_bound_seconds=idle_bound_ms / 1000,
            )
            try:
                # A standby waits here for the lock, and any worker for the database and the
                # broker: a stop request ends the wait.
                if await until_stopped(worker.start(stop=stop), stop):
                    await worker.run(stop)
            finally:
                await worker.stop()
        except locks.WaitStopped:
            log.info("stopped_while_waiting_for_lock")


async def until_stopped(starting, stop: asyncio.Event) -> bool:
    """Run `starting` unless `stop` is set first (then it is cancelled); says whether it
    finished. An outage it was still waiting out when stopped is not an error."""
    task = asyncio.ensure_future(starting)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return False
    if stop.is_set() and task.exception() is not None:
        return False
    task.result()
    return True


def handle_worker(args) -> int:
    chosen = options(WorkerOptions, args, "shards", "metrics_port", "recalc_every_minutes", "idle_bound_ms")
    if chosen.shards < 0:
        raise CommandError("--shards must be 0 (one active worker) or more")
    metrics.serve(chosen.metrics_port)
    partitioned = None
    if args.partitioned:
        if min(args.allocation_partitions, args.assembly_partitions) < 1:
            raise CommandError("--allocation-partitions and --assembly-partitions must be 1 or more")
        partitioned = (args.allocation_partitions, args.assembly_partitions)
    asyncio.run(run_worker(database_url(args.db), args.batch_size, args.schema, chosen.recalc_every_minutes,
                           chosen.shards, chosen.idle_bound_ms, partitioned))
    return 0


async def produce(lines, kafka: KafkaSettings, topics: InputTopics) -> int:
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all", enable_idempotence=True)
    await producer.start()
    sent = 0
    try:
        for line in lines:
            raw = line.rstrip(b"\r\n")
            if not raw.strip():
                continue
            try:
                event = json.loads(raw)
            except ValueError:
                event = None
            topic, key = topics.route(event)
            await producer.send(topic, value=raw, key=None if key is None else key.encode())
            sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def handle_produce(args) -> int:
    if args.events == "-":
        lines = sys.stdin.buffer
    else:
        path = Path(args.events)
        if not path.is_file():
            raise CommandError(f"no such file: {args.events}")
        lines = path.open("rb")
    sent = asyncio.run(produce(lines, KafkaSettings(), InputTopics()))
    print(f"produced {sent} events")
    return 0
