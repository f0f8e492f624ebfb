"""The partitioned recalculator against the single worker, measured in one run
(`python -m bench.partitioned_bench`, part of `make bench-kafka`; docs/benchmarks.md).

The same generated day (shaped as the partitioned recalculator needs: a receipt per SKU, a
command per order) is produced to fresh topics with 6 partitions for orders and inventory
and one for commands, once the workers run. Figures:
1. CPU per input: the worker processes' CPU (user + system, all stages) from the first
   record produced to the last output written, divided by the inputs; the single worker
   (`backorders worker recalculator`) against one partitioned process.
2. Throughput of 1, 2 and 3 partitioned processes, each held to the same share of a core
   (a cgroup CPU quota, `cpu_budget`), as on machines of their own; runs alternate.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid

from backorders_platform import logs
from backorders_platform.kafka_settings import KafkaSettings
from backorders_platform.migrations import drop_schema
from backorders_workload import WorkloadShape, generate_day
from recalculator.cli.worker import produce
from recalculator.kafka.partitioned_worker import backlog, internal_topic, schemas_of
from recalculator.kafka.topic_admin import delete_topics, topic_names
from recalculator.publishing import to_json

from bench.cpu_budget import CpuBudget, unavailable
from bench.kafka_bench import BACKORDERS, _scalar, fresh_topics, process_cpu_seconds, stop_all, topics_env

PARTITIONS = 6
BUDGET = 0.3
REPEATS = 2


def shaped_lines(orders: int) -> list[bytes]:
    lines = []
    for event in generate_day(42, WorkloadShape(orders=orders)):
        data = event.get("data") if "__raw__" not in event else None
        kind = event.get("type")
        if isinstance(data, dict) and kind == "POReceived" and len({line["sku"] for line in data["lines"]}) > 1:
            for sku in dict.fromkeys(line["sku"] for line in data["lines"]):
                part = [line for line in data["lines"] if line["sku"] == sku]
                lines.append(to_json({**event, "id": f"{event['id']}/{sku}", "data": {**data, "lines": part}}))
            continue
        if isinstance(data, dict) and kind in ("MarkBackorder", "MarkNotBackorder", "RecalculateBackorders") \
                and len(data.get("order_ids") or ()) + bool(data.get("skus")) > 1:
            for order_id in dict.fromkeys(data["order_ids"]):
                lines.append(to_json({**event, "id": f"{event['id']}/{order_id}",
                                      "data": {**data, "order_ids": [order_id], **({"skus": []} if "skus" in data else {})}}))
            if data.get("skus"):
                lines.append(to_json({**event, "id": f"{event['id']}/skus", "data": {**data, "order_ids": []}}))
            continue
        lines.append(event["__raw__"] if "__raw__" in event else to_json(event))
    return [line.encode() for line in lines]


async def run(servers: str, url: str, lines: list[bytes], *, partitioned: bool, workers: int = 1,
              budget: float | None = None) -> dict:
    inputs, outputs = await fresh_topics(servers, "pbench", orders=PARTITIONS, inventory=PARTITIONS, commands=1)
    base = f"pb_{uuid.uuid4().hex[:8]}"
    command = [*BACKORDERS, "worker", "recalculator", "--db", url, "--schema", base, "--metrics-port", "0",
               "--recalc-every-minutes", "0", "--batch-size", "500"]
    if partitioned:
        command += ["--partitioned", "--allocation-partitions", str(PARTITIONS),
                    "--assembly-partitions", str(PARTITIONS)]
    processes = [subprocess.Popen(command, env=topics_env(servers, inputs, outputs)) for _ in range(workers)]
    budgets = []
    kafka = KafkaSettings(bootstrap_servers=servers)
    try:
        for process in processes if budget is not None else ():
            budgets.append(CpuBudget(budget))
            budgets[-1].add(process.pid)
        await asyncio.sleep(12 if partitioned else 4)  # groups formed, partitions claimed
        started = time.perf_counter()
        cpu = sum(process_cpu_seconds(p.pid) for p in processes)
        await produce(lines, kafka, inputs)
        while True:
            if partitioned:
                left = await backlog(url, base, kafka, inputs)
            else:
                applied = await _scalar(url, f'select coalesce(sum(position + 1), 0) from "{base}".positions '
                                             "where source like '%:%'")
                relayed = await _scalar(url, f'select count(*) from "{base}".outbox')
                left = len(lines) - int(applied or 0) + (0 if relayed is not None else 1)
            if left == 0:
                break
            await asyncio.sleep(0.1)
        seconds = time.perf_counter() - started
        cpu = sum(process_cpu_seconds(p.pid) for p in processes) - cpu
    finally:
        await stop_all(processes)
        for group in budgets:
            group.remove()
        for schema in [base, *(schemas_of(base, PARTITIONS, PARTITIONS, PARTITIONS) if partitioned else [])]:
            await drop_schema(url, schema)
        internal = [internal_topic(base, name) for name in ("order-commands", "global", "allocation", "partials")]
        await delete_topics(kafka, [*inputs.all(), *internal])
    return {"workers": workers, "seconds": seconds, "inputs_per_s": len(lines) / seconds,
            "cpu_us_per_input": cpu / len(lines) * 1e6}


async def main() -> None:
    logs.configure("error")
    servers, url = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("DATABASE_URL")
    if not servers or not url:
        sys.exit("KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL are needed: run `make bench-kafka`")
    orders = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    lines = shaped_lines(orders)
    kafka = KafkaSettings(bootstrap_servers=servers)
    before = await topic_names(kafka)
    print(f"partitioned recalculator: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{len(lines):,} inputs ({orders:,} orders), {PARTITIONS} partitions per stage")
    try:
        single = await run(servers, url, lines, partitioned=False)
        one = await run(servers, url, lines, partitioned=True)
        print(f"1. CPU per input: single worker {single['cpu_us_per_input']:,.0f} µs, partitioned (one process, "
              f"all stages) {one['cpu_us_per_input']:,.0f} µs: {one['cpu_us_per_input'] / single['cpu_us_per_input']:.2f}x"
              "   (target <= 1.5x)")
        print(f"   unbudgeted throughput: single {single['inputs_per_s']:,.0f} inputs/s, partitioned "
              f"{one['inputs_per_s']:,.0f} inputs/s")
        if reason := unavailable():
            print(f"2. quota-held workers: not measured: {reason}")
            return
        runs = [await run(servers, url, lines, partitioned=True, workers=n, budget=BUDGET)
                for _ in range(REPEATS) for n in (1, 2, 3)]
        best = {n: max(r["inputs_per_s"] for r in runs if r["workers"] == n) for n in (1, 2, 3)}
        spread = {n: " / ".join(f"{r['inputs_per_s']:,.0f}" for r in runs if r["workers"] == n) for n in (1, 2, 3)}
        print(f"2. each process held to {BUDGET} of a core: " + ", ".join(
            f"{n}: {best[n]:,.0f} inputs/s ({spread[n]})" for n in (1, 2, 3)))
        print(f"   two / one: {best[2] / best[1]:.2f} (target >= 1.8)   three / one: {best[3] / best[1]:.2f} "
              "(target >= 2.6)")
    finally:
        await delete_topics(kafka, await topic_names(kafka) - before)


if __name__ == "__main__":
    asyncio.run(main())
