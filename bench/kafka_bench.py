"""`make bench-kafka`: the recalculator through a real Kafka broker and PostgreSQL.

Prints figures (not a test):
1. events/s of the worker catching up on the generated day already in the input topics,
   next to the embedded runtime (SQLite) on the same records in the same run;
2. latency from producing an input to its BackorderChanged arriving on the output topic,
   at a steady 2,000 events/s, with the worker and the outbox relay as processes of their own
   and the timing producer and consumer in a third (timed once one warm-up input has gone
   through: steady state, not start-up);
3. the SKU-sharded recalculator (docs/sharding.md) with one and with two worker processes on
   the same day, and its allocation stage alone in one and in two processes, each with the
   share of the machine's CPU that was busy (broker, PostgreSQL and workers share it);
4. the sharded recalculator again with one, two and three worker processes, each held to
   the same share of a core (`cpu_budget`): how throughput grows with workers when each
   has CPU of its own, as on machines of their own;
5. a soak: ten generated days, one after the other, through one worker process and the
   outbox relay with short retention windows, with the worker's resident memory and the row
   count of every table at the start and at the end of each day (they should stop growing
   once the windows are full). `python -m bench.kafka_bench --soak [--days N] [--orders N]
   [--skus N]` runs this section alone.
Needs KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL (`make bench-kafka` starts both).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from backorder_events.topics import InputTopics, OutputTopics
from backorders_platform import logs
from backorders_platform.database import make_engine, sqlite_url
from backorders_platform.kafka_settings import KafkaSettings
from backorders_platform.migrations import drop_schema
from backorders_workload import WorkloadShape, generate_day, generate_days
from recalculator.adapters import tables
from recalculator.cli.worker import produce
from recalculator.kafka.sharded import (
    LIVE_SECONDS,
    TICK_SECONDS,
    RouterWorker,
    ShardStage,
)
from recalculator.kafka.topic_admin import delete_topics, topic_names
from recalculator.kafka.worker import RecalculatorWorker
from recalculator.ordering import DEFAULT_IDLE_BOUND_MS
from recalculator.publishing import to_json
from recalculator.runtime.embedded import EmbeddedRuntime
from recalculator.runtime.tuning import tune_collector
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from bench.cpu_budget import CpuBudget, unavailable

BACKORDERS = [sys.executable, "-m", "backorders_app.main"]
RATE = 2000
SECONDS = 10
SHARDS = 4
BUDGET = 0.3  # of a core, per worker process, in the budgeted sharded runs
BUDGET_REPEATS = 3
SOAK_DAYS = 10
# Short windows, so that ten days fill them several times over (business time).
SOAK_RETENTION = {"BACKORDERS_DEDUPE_WINDOW": "P2D", "BACKORDERS_CLOSED_ORDER_RETENTION": "P2D",
                  "BACKORDERS_OUTBOX_RETENTION": "P1D", "BACKORDERS_DEAD_LETTER_RETENTION": "P1D",
                  "BACKORDERS_PRUNE_EVERY_SECONDS": "1"}


async def fresh_topics(servers: str, prefix: str = "bench", orders: int = 4, inventory: int = 1,
                       commands: int = 2) -> tuple[InputTopics, OutputTopics]:
    """Input and output topics of their own (`orders`, `inventory`, `commands`: partition
    counts)."""
    suffix = uuid.uuid4().hex[:8]
    inputs = InputTopics(orders=f"{prefix}.orders.{suffix}", inventory=f"{prefix}.inventory.{suffix}",
                         reference=f"{prefix}.reference.{suffix}", commands=f"{prefix}.commands.{suffix}")
    outputs = OutputTopics(backorder_changed=f"{prefix}.bc.{suffix}",
                           product_backorder_changed=f"{prefix}.pbc.{suffix}",
                           sku_position_changed=f"{prefix}.pos.{suffix}", dead_letters=f"{prefix}.dlq.{suffix}")
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.create_topics([
            NewTopic(inputs.orders, orders, 1), NewTopic(inputs.inventory, inventory, 1),
            NewTopic(inputs.reference, 1, 1), NewTopic(inputs.commands, commands, 1),
            NewTopic(outputs.backorder_changed, 4, 1), NewTopic(outputs.product_backorder_changed, 4, 1),
            NewTopic(outputs.sku_position_changed, 4, 1), NewTopic(outputs.dead_letters, 1, 1),
        ])
    finally:
        await admin.close()
    return inputs, outputs


def raw_lines(events) -> list[bytes]:
    return [(e["__raw__"] if "__raw__" in e else to_json(e)).encode() for e in events]


async def throughput(servers: str, url: str) -> dict:
    lines = raw_lines(generate_day(42, WorkloadShape()))
    kafka = KafkaSettings(bootstrap_servers=servers)
    inputs, _ = await fresh_topics(servers)
    await produce(lines, kafka, inputs)
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        async with RecalculatorWorker(url, schema=schema, kafka=kafka, topics=inputs) as worker:
            started = time.perf_counter()
            await worker.catch_up()
            worker_seconds = time.perf_counter() - started
    finally:
        await drop_schema(url, schema)
    with tempfile.TemporaryDirectory() as folder:
        async with EmbeddedRuntime(sqlite_url(Path(folder) / "bench.sqlite")) as runtime:
            started = time.perf_counter()
            await runtime.consume("bench", list(enumerate(lines, 1)))
            embedded_seconds = time.perf_counter() - started
    return {
        "events": len(lines),
        "worker_events_per_s": len(lines) / worker_seconds,
        "embedded_events_per_s": len(lines) / embedded_seconds,
    }


def topics_env(servers: str, inputs: InputTopics, outputs: OutputTopics) -> dict:
    """The environment of a worker or relay process on these topics."""
    return {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": servers, "BACKORDERS_LOG_LEVEL": "error",
            "BACKORDERS_TOPIC_ORDERS": inputs.orders, "BACKORDERS_TOPIC_INVENTORY": inputs.inventory,
            "BACKORDERS_TOPIC_REFERENCE": inputs.reference, "BACKORDERS_TOPIC_COMMANDS": inputs.commands,
            "BACKORDERS_TOPIC_BACKORDER_CHANGED": outputs.backorder_changed,
            "BACKORDERS_TOPIC_PRODUCT_BACKORDER_CHANGED": outputs.product_backorder_changed,
            "BACKORDERS_TOPIC_SKU_POSITION_CHANGED": outputs.sku_position_changed,
            "BACKORDERS_TOPIC_DEAD_LETTERS": outputs.dead_letters}


def start_sharded(url: str, base: str, workers: int, env: dict) -> list[subprocess.Popen]:
    return [
        subprocess.Popen([*BACKORDERS, "worker", "recalculator", "--db", url, "--schema", base,
                          "--shards", str(SHARDS), "--metrics-port", "0", "--recalc-every-minutes", "0",
                          "--batch-size", "500"], env=env)
        for _ in range(workers)
    ]


async def _scalar(url: str, query: str):
    db = make_engine(url)
    try:
        async with db.connect() as conn:
            return (await conn.execute(text(query))).scalar()
    except Exception:  # noqa: BLE001 - not created yet
        return None
    finally:
        await db.dispose()


class Probe:
    """One connection for the benchmark's polling queries: a connection per query (TLS and
    a SCRAM login each) would load PostgreSQL more than some of the work being measured."""

    def __init__(self, db, conn) -> None:
        self.db, self.conn = db, conn

    @classmethod
    async def open(cls, url: str) -> Probe:
        db = make_engine(url)
        return cls(db, await (await db.connect()).execution_options(isolation_level="AUTOCOMMIT"))

    async def close(self) -> None:
        await self.conn.close()
        await self.db.dispose()

    async def scalar(self, query: str):
        try:
            return (await self.conn.execute(text(query))).scalar()
        except ProgrammingError:  # not created yet
            return None


async def sharded_progress(probe: Probe, base: str) -> tuple[int, int]:
    """(inputs the router has committed, causes not yet assembled + rows not yet applied)."""
    routed = await probe.scalar(f'select coalesce(sum(position + 1), 0) from "{base}_router".positions '
                                "where source like '%:%'") or 0
    left = await probe.scalar(f'select (select count(*) from "{base}".causes) + (select count(*) from "{base}".routed)')
    return int(routed), (-1 if left is None else int(left))


async def stop_all(processes) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()


async def drop_sharded(url: str, base: str) -> None:
    for schema in [base, f"{base}_router", f"{base}_assembler", *(f"{base}_shard{p}" for p in range(SHARDS))]:
        await drop_schema(url, schema)


async def sharded_throughput(servers: str, url: str, workers: int, budget: float | None = None) -> dict:
    """The generated day through router, shards and assembler run by `workers` processes:
    the workers are started on empty topics and given time to share the shards out, then
    the day is produced and timed from its first record to its last cause assembled. With
    `budget`, each worker process is held to that share of a core (`cpu_budget`)."""
    lines = raw_lines(generate_day(42, WorkloadShape()))
    inputs, outputs = await fresh_topics(servers)
    base = f"bsh_{uuid.uuid4().hex[:8]}"
    processes = start_sharded(url, base, workers, topics_env(servers, inputs, outputs))
    budgets = []
    probe = await Probe.open(url)
    try:
        if budget is not None:
            for process in processes:
                budgets.append(CpuBudget(budget))
                budgets[-1].add(process.pid)
        while await probe.scalar(f'select count(*) from "{base}".workers') != workers:
            await asyncio.sleep(0.1)
        await asyncio.sleep(3 * TICK_SECONDS + LIVE_SECONDS)  # shares settled, stages started
        started, cpu = time.perf_counter(), cpu_ticks()
        worker_cpu = sum(process_cpu_seconds(process.pid) for process in processes)
        await produce(lines, KafkaSettings(bootstrap_servers=servers), inputs)
        while True:
            routed, left = await sharded_progress(probe, base)
            if routed >= len(lines) and left == 0:
                break
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - started
        worker_cpu = sum(process_cpu_seconds(process.pid) for process in processes) - worker_cpu
        busy, total = (b - a for a, b in zip(cpu, cpu_ticks(), strict=True))
    finally:
        await probe.close()
        await stop_all(processes)
        await drop_sharded(url, base)
        for group in budgets:
            group.remove()
    return {"workers": workers, "budget": budget, "events": len(lines), "events_per_s": len(lines) / seconds,
            "cpu_busy": busy / total if total else 0.0, "worker_cores": worker_cpu / seconds}


def process_cpu_seconds(pid: int) -> float:
    """CPU time a process has used so far, user and system (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine so far (Linux /proc/stat)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0, 0
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


async def shard_stage_scaling(servers: str, url: str) -> list[dict]:
    """The allocation stage alone: the generated day routed beforehand (the router's
    `routed` rows for the four shards), then applied by the shards held by one process, and
    by two processes holding two shards each. Timed from a common start, once every process
    has loaded its shards, to the last row applied."""
    lines = raw_lines(generate_day(42, WorkloadShape()))
    inputs, outputs = await fresh_topics(servers)
    kafka = KafkaSettings(bootstrap_servers=servers)
    await produce(lines, kafka, inputs)
    env = topics_env(servers, inputs, outputs)
    results = []
    for split in ([list(range(SHARDS))], [[0, 2], [1, 3]]):
        base = f"bss_{uuid.uuid4().hex[:8]}"
        try:
            async with RouterWorker(url, base, SHARDS, kafka=kafka, topics=inputs) as router:
                await router.catch_up()
            rows = await _scalar(url, f'select count(*) from "{base}".routed')
            processes = [
                subprocess.Popen([sys.executable, "-m", "bench.kafka_bench", "--apply-shards", base,
                                  ",".join(map(str, shards))], env=env, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
                for shards in split
            ]
            for process in processes:
                assert process.stdout.readline().strip() == "ready"
            started, cpu = time.perf_counter(), cpu_ticks()
            for process in processes:
                process.stdin.write("go\n")
                process.stdin.flush()
            for process in processes:
                assert process.wait(timeout=600) == 0
            seconds = time.perf_counter() - started
            busy, total = (b - a for a, b in zip(cpu, cpu_ticks(), strict=True))
            results.append({"processes": len(split), "rows": rows, "rows_per_s": rows / seconds,
                            "inputs_per_s": len(lines) / seconds, "cpu_busy": busy / total if total else 0.0})
        finally:
            await drop_sharded(url, base)
    return results


async def apply_shards(base: str, shards: list[int]) -> None:
    """`--apply-shards`: hold these shards, say ready, wait for go, apply until none of them
    has work left."""
    url = os.environ["DATABASE_URL"]
    stages = [ShardStage(url, base, shard, batch_size=1000) for shard in shards]
    for stage in stages:
        assert await stage.try_start()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    never = asyncio.Event()

    async def drain(stage: ShardStage, probe: Probe) -> None:
        while True:
            if not await stage.step(never):
                left = await probe.scalar(f'select count(*) from "{base}".routed where shard = {stage.shard}')
                if not left:
                    return
                await asyncio.sleep(0.005)

    probes = [await Probe.open(url) for _ in stages]
    await asyncio.gather(*(drain(stage, probe) for stage, probe in zip(stages, probes, strict=True)))
    for probe in probes:
        await probe.close()
    for stage in stages:
        await stage.stop()


async def warm_up(producer: AIOKafkaProducer, inputs: InputTopics, url: str, schema: str) -> None:
    """Steady state, not start-up: one input that changes nothing (a recalculation of a SKU
    nobody has) goes through first, and the timed stream starts once the worker has
    committed it and the relay process has had time to start."""
    command = {"specversion": "1.0", "id": f"warm-up-{uuid.uuid4().hex[:8]}", "source": "/bench",
               "type": "RecalculateBackorders", "time": "2025-04-30T08:00:00Z",
               "data": {"skus": ["bench-warm-up"]}}
    await producer.send_and_wait(inputs.commands, to_json(command).encode())
    while not await _scalar(url, f'select count(*) from "{schema}".processed_events'):
        await asyncio.sleep(0.05)
    await asyncio.sleep(2)


async def latency(servers: str, url: str, idle_bound_ms: int | None = None) -> dict:
    lines = raw_lines(generate_day(7, WorkloadShape(orders=13000, skus=600)))[: RATE * SECONDS]
    inputs, outputs = await fresh_topics(servers)
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    env = topics_env(servers, inputs, outputs)
    worker = subprocess.Popen([*BACKORDERS, "worker", "recalculator", "--db", url, "--schema", schema,
                               "--metrics-port", "0", "--recalc-every-minutes", "0", "--batch-size", "500",
                               *([] if idle_bound_ms is None else ["--idle-bound-ms", str(idle_bound_ms)])], env=env)
    relay = None
    sent: dict[str, float] = {}
    received: dict[str, float] = {}
    try:
        # The relay needs the schema the worker creates on start.
        for _ in range(100):
            db = make_engine(url, schema)
            try:
                async with db.connect() as conn:
                    if (await conn.execute(text(f"select count(*) from information_schema.tables "
                                                f"where table_schema = '{schema}' and table_name = 'outbox'"))).scalar():
                        break
            finally:
                await db.dispose()
            await asyncio.sleep(0.1)
        relay = subprocess.Popen([*BACKORDERS, "relay", "--db", url, "--schema", schema, "--poll-ms", "10",
                                  "--batch-size", "500"], env=env)
        consumer = AIOKafkaConsumer(outputs.backorder_changed, bootstrap_servers=servers,
                                    auto_offset_reset="earliest", group_id=None)
        await consumer.start()

        async def collect() -> None:
            async for record in consumer:
                cause = json.loads(record.value)["data"]["cause_id"]
                received.setdefault(cause, time.perf_counter())

        collector = asyncio.create_task(collect())
        # An upstream producer as Kafka's own Java client is configured by default since
        # Kafka 4.0: batching for up to 5 ms. That wait is part of the latency measured.
        producer = AIOKafkaProducer(bootstrap_servers=servers, linger_ms=5)
        await producer.start()
        await warm_up(producer, inputs, url, schema)
        start = time.perf_counter()
        for n, raw in enumerate(lines):
            due = start + n / RATE
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                event = json.loads(raw)
            except ValueError:
                event = None
            topic, key = inputs.route(event)
            await producer.send(topic, raw, key=None if key is None else key.encode())
            if isinstance(event, dict) and "id" in event:
                sent.setdefault(event["id"], time.perf_counter())
        await producer.flush()
        produced_seconds = time.perf_counter() - start
        await asyncio.sleep(3)  # let the tail arrive
        collector.cancel()
        await asyncio.gather(collector, return_exceptions=True)
        await consumer.stop()
        await producer.stop()
    finally:
        for process in (relay, worker):
            if process is not None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
        await drop_schema(url, schema)
    waits = sorted((received[c] - sent[c]) * 1000 for c in received if c in sent)
    return {
        "events": len(lines),
        "offered_rate": RATE,
        "achieved_rate": len(lines) / produced_seconds,
        "samples": len(waits),
        "p50_ms": statistics.median(waits),
        "p99_ms": waits[int(len(waits) * 0.99) - 1],
        "max_ms": waits[-1],
    }


def resident_mb(pid: int) -> float:
    """A process's resident memory (Linux /proc), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def soak(servers: str, url: str, days: int = SOAK_DAYS, shape: WorkloadShape = WorkloadShape()) -> list[dict]:
    """Consecutive generated days (`workload.generate_days`) produced one at a time to the
    input topics of one worker process (`RecalculatorWorker`, `--soak-worker`) with the
    outbox relay process beside it, both with `SOAK_RETENTION`. At the start and the end of
    each day (every input handled, everything relayed, a prune run since): the worker's
    resident memory and each table's row count."""
    inputs, outputs = await fresh_topics(servers)
    schema = f"bsoak_{uuid.uuid4().hex[:8]}"
    env = {**topics_env(servers, inputs, outputs), **SOAK_RETENTION}
    worker = subprocess.Popen([sys.executable, "-m", "bench.kafka_bench", "--soak-worker", schema], env=env)
    relay = None
    probe = await Probe.open(url)
    kafka = KafkaSettings(bootstrap_servers=servers)
    names = [table.name for table in tables.metadata.sorted_tables]

    async def sample(day: int, when: str) -> dict:
        counts = {name: await probe.scalar(f'select count(*) from "{schema}".{name}') for name in names}
        return {"day": day, "when": when, "rss_mb": resident_mb(worker.pid), **counts}

    async def settled(produced: int) -> None:
        """Every input handled, every output and dead letter relayed, then a prune."""
        while True:
            handled = await probe.scalar(f'select coalesce(sum(position + 1), 0) from "{schema}".positions '
                                         "where source like '%:%'") or 0
            behind = 0
            for table, source in (("outbox", "outbox-relay"), ("dead_letters", "dead-letter-relay")):
                last = await probe.scalar(f'select coalesce(max(seq), 0) from "{schema}".{table}')
                sent = await probe.scalar(f'select coalesce(max(position), 0) from "{schema}".positions '
                                          f"where source = '{source}'")
                behind += (last or 0) - (sent or 0)
            if handled >= produced and behind == 0:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.5)  # the relay prunes every second

    samples = []
    try:
        while not await probe.scalar(f"select count(*) from information_schema.tables "
                                     f"where table_schema = '{schema}' and table_name = 'outbox'"):
            await asyncio.sleep(0.1)
        relay = subprocess.Popen([*BACKORDERS, "relay", "--db", url, "--schema", schema, "--poll-ms", "50",
                                  "--batch-size", "500"], env=env, stdout=subprocess.DEVNULL)
        produced = 0
        for day, events in enumerate(generate_days(days, 42, shape), 1):
            lines = raw_lines(events)
            samples.append(await sample(day, "start"))
            await produce(lines, kafka, inputs)
            produced += len(lines)
            await settled(produced)
            samples.append(await sample(day, "end"))
    finally:
        await probe.close()
        for process in (relay, worker):
            if process is not None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)
        await drop_schema(url, schema)
    return samples


async def soak_worker(schema: str) -> None:
    """`--soak-worker`: one worker on the topics and retention of the environment until
    SIGTERM."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with RecalculatorWorker(os.environ["DATABASE_URL"], schema=schema, batch_size=500) as worker:
        await worker.run(stop)


def print_soak(samples: list[dict], days: int, shape: WorkloadShape) -> None:
    names = [table.name for table in tables.metadata.sorted_tables]
    windows = ", ".join(f"{key.removeprefix('BACKORDERS_').lower()} {value}" for key, value in SOAK_RETENTION.items())
    print(f"5. Soak: {days} generated days ({shape.orders:,} orders over {shape.skus} SKUs each) through one "
          f"worker and the relay; {windows}")
    header = ["day", "when", "RSS MB", *names]
    widths = [max(len(column), 6) for column in header]
    print("   " + "  ".join(column.rjust(width) for column, width in zip(header, widths, strict=True)))
    for row in samples:
        cells = [str(row["day"]), row["when"], f"{row['rss_mb']:.0f}", *(str(row[name]) for name in names)]
        print("   " + "  ".join(cell.rjust(width) for cell, width in zip(cells, widths, strict=True)))


async def latency_in_child(idle_bound_ms: int | None = None) -> dict:
    """`latency` in a process of its own: the producer and the consumer that time the
    inputs then share no heap (and no garbage collections) with the sections before."""
    bound = [] if idle_bound_ms is None else [str(idle_bound_ms)]
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.kafka_bench", "--latency", *bound, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"the latency run failed (exit {child.returncode})")
    return json.loads(out.decode().strip().splitlines()[-1])


async def main() -> None:
    tune_collector()
    logs.configure("error")
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    url = os.environ.get("DATABASE_URL")
    if not servers or not url:
        sys.exit("KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL are needed: run `make bench-kafka`")
    print(f"backorders Kafka benchmark: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    kafka = KafkaSettings(bootstrap_servers=servers)
    before = await topic_names(kafka)
    try:
        await measure(servers, url)
    finally:
        # Left behind, every run's topics would slow the broker down for the next runs.
        await delete_topics(kafka, await topic_names(kafka) - before)


async def measure(servers: str, url: str) -> None:
    t = await throughput(servers, url)
    print("1. Throughput on the generated day (8,440 inputs, already in the topics)")
    print(f"   worker (Kafka + PostgreSQL), one active worker: {t['worker_events_per_s']:,.0f} events/s"
          "   (target >= 10,000 per worker)")
    print(f"   embedded runtime (SQLite), same records:        {t['embedded_events_per_s']:,.0f} events/s")
    print(f"   ratio worker / embedded: {t['worker_events_per_s'] / t['embedded_events_per_s']:.2f}\n")
    lat = await latency_in_child()
    print(f"2. Latency input -> BackorderChanged on the output topic at {RATE:,} events/s offered "
          f"({lat['achieved_rate']:,.0f} achieved, {lat['events']:,} inputs, {lat['samples']:,} samples)")
    print(f"   idle bound {DEFAULT_IDLE_BOUND_MS} ms (the default): p50 {lat['p50_ms']:.0f} ms   "
          f"p99 {lat['p99_ms']:.0f} ms   max {lat['max_ms']:.0f} ms   (target p99 <= 200 ms)")
    # The same with no idle bound: what waiting for quiet partitions costs.
    unbound = await latency_in_child(0)
    print(f"   idle bound 0 ms:               p50 {unbound['p50_ms']:.0f} ms   p99 {unbound['p99_ms']:.0f} ms   "
          f"max {unbound['max_ms']:.0f} ms   ({unbound['achieved_rate']:,.0f} achieved, {unbound['samples']:,} samples)\n")
    sharded = [await sharded_throughput(servers, url, workers) for workers in (1, 2)]
    print(f"3. The SKU-sharded recalculator ({SHARDS} shards), same day produced once the workers run")
    for run in sharded:
        print(f"   {run['workers']} worker process(es): {run['events_per_s']:,.0f} events/s   "
              f"(ratio to embedded {run['events_per_s'] / t['embedded_events_per_s']:.2f}, "
              f"workers used {run['worker_cores']:.2f} cores, machine CPU busy {run['cpu_busy']:.0%})")
    print(f"   two workers / one: {sharded[1]['events_per_s'] / sharded[0]['events_per_s']:.2f}")
    stage = await shard_stage_scaling(servers, url)
    for run in stage:
        print(f"   allocation stage alone (the day routed beforehand), {SHARDS} shards in {run['processes']} "
              f"process(es): {run['inputs_per_s']:,.0f} inputs/s ({run['rows_per_s']:,.0f} routed rows/s, "
              f"machine CPU busy {run['cpu_busy']:.0%})")
    print(f"   allocation stage, two processes / one: {stage[1]['inputs_per_s'] / stage[0]['inputs_per_s']:.2f}\n")
    budgeted = []
    print(f"4. The same, each worker process held to {BUDGET} of a core (a cgroup CPU quota: each worker "
          "with CPU of its own, as on a machine of its own)")
    if reason := unavailable():
        print(f"   not measured: {reason} (needs root)")
    else:
        # Runs alternate between the worker counts, so that a change in the machine's speed
        # during the benchmark touches every count alike; each count's median is reported.
        runs = [await sharded_throughput(servers, url, workers, BUDGET)
                for _ in range(BUDGET_REPEATS) for workers in (1, 2, 3)]
        for workers in (1, 2, 3):
            mine = sorted((run for run in runs if run["workers"] == workers), key=lambda run: run["events_per_s"])
            median = mine[len(mine) // 2]
            budgeted.append({**median, "all_events_per_s": [run["events_per_s"] for run in mine]})
        for run in budgeted:
            spread = " / ".join(f"{rate:,.0f}" for rate in run["all_events_per_s"])
            print(f"   {run['workers']} worker process(es): {run['events_per_s']:,.0f} events/s, median of "
                  f"{spread}   (workers used {run['worker_cores']:.2f} cores, machine CPU busy {run['cpu_busy']:.0%})")
        print(f"   two workers / one: {budgeted[1]['events_per_s'] / budgeted[0]['events_per_s']:.2f}   "
              f"three / one: {budgeted[2]['events_per_s'] / budgeted[0]['events_per_s']:.2f}")
    print()
    soaked = await soak(servers, url)
    print_soak(soaked, SOAK_DAYS, WorkloadShape())
    print(f"\nmachine: Python {platform.python_version()}, {os.cpu_count()} cores, {platform.platform()}")
    Path("var/bench").mkdir(parents=True, exist_ok=True)
    Path("var/bench/kafka.json").write_text(json.dumps(
        {"throughput": t, "latency": lat, "latency_idle_bound_0": unbound, "sharded": sharded, "allocation_stage": stage,
         "budgeted": budgeted, "soak": soaked}, indent=2))


async def soak_only(args: list[str]) -> None:
    """`--soak [--days N] [--orders N] [--skus N]`: section 5 alone."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.kafka_bench --soak")
    parser.add_argument("--days", type=int, default=SOAK_DAYS)
    parser.add_argument("--orders", type=int, default=WorkloadShape().orders)
    parser.add_argument("--skus", type=int, default=WorkloadShape().skus)
    options = parser.parse_args(args)
    tune_collector()
    logs.configure("error")
    servers, url = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("DATABASE_URL")
    if not servers or not url:
        sys.exit("KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL are needed: run it under deploy/test-env.sh")
    kafka = KafkaSettings(bootstrap_servers=servers)
    before = await topic_names(kafka)
    shape = WorkloadShape(orders=options.orders, skus=options.skus)
    try:
        samples = await soak(servers, url, options.days, shape)
    finally:
        await delete_topics(kafka, await topic_names(kafka) - before)
    print_soak(samples, options.days, shape)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--latency"]:
        tune_collector()
        logs.configure("error")
        bound = int(sys.argv[2]) if len(sys.argv) > 2 else None
        figures = asyncio.run(latency(os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["DATABASE_URL"], bound))
        print(json.dumps(figures))
    elif sys.argv[1:2] == ["--apply-shards"]:
        logs.configure("error")
        asyncio.run(apply_shards(sys.argv[2], [int(p) for p in sys.argv[3].split(",")]))
    elif sys.argv[1:2] == ["--soak-worker"]:
        tune_collector()
        logs.configure("error")
        asyncio.run(soak_worker(sys.argv[2]))
    elif sys.argv[1:2] == ["--soak"]:
        asyncio.run(soak_only(sys.argv[2:]))
    else:
        asyncio.run(main())
