"""API latency at a steady request rate: `backorders serve` as a process over the large
generated day's state (50,000 orders, SQLite), requests sent from this process at a fixed
rate over loopback (docs/api.md, docs/benchmarks.md).

Open loop (bench/http_load.py): request i is due at start + i / rate and its latency is
counted from that moment, so a server that falls behind shows it in the figures instead of
slowing the sender down. The sender is raw asyncio HTTP/1.1 on keep-alive connections, so
it takes little of the cores the server needs. Each kind of request runs on its own for
`--seconds`; the first one-order read (which loads the engine) is made before, and reported
apart. Beside the latencies: the CPU the server (all its processes) and the sender used,
the machine's busy share over the run and its load average. Before the runs, 200 requests
of each kind at once warm every connection up (not measured)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

from backorders_platform.database import sqlite_url
from backorders_workload import WorkloadShape, generate_day
from recalculator.publishing import to_json
from recalculator.runtime.embedded import EmbeddedRuntime

from bench.http_load import Client, steady

OUT = Path("var/bench/api.json")
STATE = Path("var/bench/api-large.sqlite")
TARGETS = {"order search": 50.0, "one order": 10.0}  # p99, ms (issue 14)


async def build_state(path: Path, orders: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    events = generate_day(seed=42, shape=WorkloadShape(orders=orders, skus=max(50, orders // 25)))
    records = [(n, e["__raw__"] if "__raw__" in e else to_json(e)) for n, e in enumerate(events, 1)]
    async with EmbeddedRuntime(sqlite_url(path), batch_size=1000) as runtime:
        await runtime.consume("day", records)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def wait_ready(client: Client, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if await client.get("/metrics") == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("backorders serve did not answer")


def _process_cpu(root: int) -> float:
    """CPU seconds (user + system) of a process and every process under it."""
    tick = os.sysconf("SC_CLK_TCK")
    parents, times = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(times.get(pid, 0.0) for pid in tree)


def _machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of every core since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


async def _measured(client: Client, server: int, paths: list[str], rate: float, seconds: float) -> dict:
    cpu, (busy, total) = _process_cpu(server), _machine_busy()
    run = await steady(client, paths, rate, seconds)
    busy2, total2 = _machine_busy()
    result = run.summary()
    result["server_cpu_s"] = _process_cpu(server) - cpu
    result["machine_busy"] = (busy2 - busy) / max(1, total2 - total)
    result["load_average_1m"] = os.getloadavg()[0]
    result["seconds"] = run.elapsed
    return result


async def _order_ids(client: Client, port: int) -> list[str]:
    """Every order id of the state, through the API's own search (any backend)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    ids, offset = [], 0
    try:
        while True:
            writer.write(f"GET /orders?sort=order_id&limit=500&offset={offset} HTTP/1.1\r\n"
                         f"Host: bench\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            page = json.loads(await reader.readexactly(length))
            ids.extend(item["order_id"] for item in page["items"])
            offset += 500
            if offset >= page["total"]:
                return ids
    finally:
        writer.close()


async def measure(where: list[str], rate: float, seconds: float, workers: int) -> dict:
    """`where`: serve's options naming the state (`--db FILE`, or `--database-url URL`...)."""
    port = free_port()
    command = [sys.executable, "-m", "backorders_app.main", "serve", *where, "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    client = Client("127.0.0.1", port)
    try:
        await wait_ready(client, time.monotonic() + 60)
        ids = await _order_ids(client, port)
        rng = random.Random(7)
        filters = ["full", "partial", "full-or-partial", "none", "not-full"]
        searches = [f"/orders?backorder={rng.choice(filters)}&limit=50&offset={rng.randrange(0, 2000, 50)}"
                    for _ in range(500)]
        orders = [f"/orders/{rng.choice(ids)}" for _ in range(2000)]
        # The first one-order read of every server process loads the engine: made before
        # the runs, over as many connections as there are processes (each connection stays
        # with the process that accepted it, so these may not reach every one).
        started = time.perf_counter()
        assert await client.get(orders[0]) == 200
        first = (time.perf_counter() - started) * 1000
        await asyncio.gather(*(client.get(path) for path in orders[1:1 + 4 * workers]))
        # Warm-up, not measured: every connection of the sender, and of each server process
        # to SQLite (whose page cache is per connection), has read before the runs.
        for paths in (searches, orders):
            await asyncio.gather(*(client.get(path) for path in paths[:200]))
        results = {"orders in the state": len(ids), "first one-order read ms": first, "workers": workers,
                   "cores": os.cpu_count(), "rate": rate}
        for name, paths in (("order search", searches), ("one order", orders)):
            results[name] = await _measured(client, server.pid, paths, rate, seconds)
        return results
    finally:
        await client.close()
        server.terminate()
        server.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=15.0, help="per kind of request")
    parser.add_argument("--workers", type=int, default=1, help="server processes (`serve --workers`)")
    parser.add_argument("--rebuild", action="store_true", help="build the state again")
    parser.add_argument("--state", type=Path, help="serve this SQLite state instead (built already)")
    parser.add_argument("--database-url", metavar="URL",
                        help="serve the state in this database instead (PostgreSQL, built already)")
    parser.add_argument("--schema", help="with --database-url: the state's schema")
    args = parser.parse_args(argv)
    state = args.state or STATE.with_name(f"api-{args.orders}.sqlite")
    if args.database_url:
        where = ["--database-url", args.database_url] + (["--schema", args.schema] if args.schema else [])
    else:
        where = ["--db", str(state)]
    if not args.state and not args.database_url and (args.rebuild or not state.exists()):
        started = time.perf_counter()
        asyncio.run(build_state(state, args.orders))
        print(f"state of {args.orders:,} orders built in {time.perf_counter() - started:.0f} s: {state}")
    results = asyncio.run(measure(where, args.rate, args.seconds, args.workers))
    results["state"] = "PostgreSQL" if args.database_url else "SQLite"
    print(f"\nAPI at {args.rate:.0f} requests/s, {args.seconds:.0f} s per kind, "
          f"{results['orders in the state']:,} orders ({results['state']}), {args.workers} server process(es) "
          f"(first one-order read: {results['first one-order read ms']:.0f} ms)")
    print(f"{'requests':<14} {'sent':>6} {'errors':>6} {'served/s':>8} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'p99 ms':>8} {'max ms':>8} {'server':>7} {'sender':>7} {'busy':>5} {'load':>5}  target (p99)")
    for name, target in TARGETS.items():
        r = results[name]
        verdict = "met" if r["p99"] <= target and not r["errors"] else "MISSED"
        print(f"{name:<14} {r['requests']:>6} {r['errors']:>6} {r['served_per_s']:>8.0f} {r['p50']:>8.1f} "
              f"{r['p95']:>8.1f} {r['p99']:>8.1f} {r['max']:>8.1f} {r['server_cpu_s'] / r['seconds']:>6.0%} "
              f"{r['generator_cpu_s'] / r['seconds']:>6.0%} {r['machine_busy']:>5.0%} "
              f"{r['load_average_1m']:>5.2f}  <= {target:.0f} ms: {verdict}")
    print("server, sender: CPU used over the run (100% = one core); busy: all cores; load: 1-minute average")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
