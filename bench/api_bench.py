"""API latency at a steady request rate: `backorders serve` as a process over the large
generated day's state (50,000 orders, SQLite), requests sent from this process at a fixed
rate over loopback (docs/api.md, docs/benchmarks.md).

Open loop: request i is due at start + i / rate and its latency is counted from that moment,
so a server that falls behind shows it in the figures instead of slowing the sender down.
Each kind of request runs on its own for `--seconds`; the first one-order read (which loads
the engine) is made before, and reported apart."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
from backorders_platform.database import sqlite_url
from backorders_workload import WorkloadShape, generate_day
from recalculator.publishing import to_json
from recalculator.runtime.embedded import EmbeddedRuntime

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


async def wait_ready(client: httpx.AsyncClient, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if (await client.get("/metrics")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("backorders serve did not answer")


async def steady(client: httpx.AsyncClient, paths: list[str], rate: float, seconds: float) -> dict:
    count = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter() + 0.05

    async def one(i: int) -> None:
        nonlocal errors
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        response = await client.get(paths[i % len(paths)])
        latencies.append((time.perf_counter() - due) * 1000)
        if response.status_code != 200:
            errors += 1

    await asyncio.gather(*(one(i) for i in range(count)))
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))]

    return {"requests": count, "errors": errors, "rate": count / elapsed, "p50": pct(0.5),
            "p95": pct(0.95), "p99": pct(0.99), "max": latencies[-1]}


async def measure(state: Path, rate: float, seconds: float) -> dict:
    ids = [row[0] for row in sqlite3.connect(state).execute("SELECT order_id FROM orders")]
    rng = random.Random(7)
    filters = ["full", "partial", "full-or-partial", "none", "not-full"]
    searches = [f"/orders?backorder={rng.choice(filters)}&limit=50&offset={rng.randrange(0, 2000, 50)}"
                for _ in range(500)]
    orders = [f"/orders/{rng.choice(ids)}" for _ in range(2000)]
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "backorders_app.main", "serve", "--db", str(state), "--port", str(port)],
        stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60) as client:
            await wait_ready(client, time.monotonic() + 60)
            started = time.perf_counter()
            assert (await client.get(orders[0])).status_code == 200
            first = (time.perf_counter() - started) * 1000
            results = {"orders in the state": len(ids), "first one-order read ms": first}
            for name, paths in (("order search", searches), ("one order", orders)):
                results[name] = await steady(client, paths, rate, seconds)
            return results
    finally:
        server.terminate()
        server.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=15.0, help="per kind of request")
    parser.add_argument("--rebuild", action="store_true", help="build the state again")
    args = parser.parse_args(argv)
    state = STATE.with_name(f"api-{args.orders}.sqlite")
    if args.rebuild or not state.exists():
        started = time.perf_counter()
        asyncio.run(build_state(state, args.orders))
        print(f"state of {args.orders:,} orders built in {time.perf_counter() - started:.0f} s: {state}")
    results = asyncio.run(measure(state, args.rate, args.seconds))
    print(f"\nAPI at {args.rate:.0f} requests/s, {args.seconds:.0f} s per kind, "
          f"{results['orders in the state']:,} orders (first one-order read: {results['first one-order read ms']:.0f} ms)")
    print(f"{'requests':<14} {'sent':>6} {'errors':>6} {'rate/s':>7} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'p99 ms':>7} {'max ms':>7}  target (p99)")
    for name, target in TARGETS.items():
        r = results[name]
        verdict = "met" if r["p99"] <= target and not r["errors"] else "MISSED"
        print(f"{name:<14} {r['requests']:>6} {r['errors']:>6} {r['rate']:>7.0f} {r['p50']:>7.1f} "
              f"{r['p95']:>7.1f} {r['p99']:>7.1f} {r['max']:>7.1f}  <= {target:.0f} ms: {verdict}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
