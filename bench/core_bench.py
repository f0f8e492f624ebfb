"""Benchmark figures for the allocation core and the embedded runtime (`make bench`).

Prints one table per section and writes every figure to var/bench/core.json. Not a test:
nothing here asserts a speed; the targets are printed next to the figures.

Everything that is compared is measured in this one process, one after the other, so the
ratios (incremental core vs. the from-scratch engine, core vs. embedded runtime) hold on any
machine even when the absolute numbers do not. Times are `time.perf_counter()`; each figure
is taken over several repeats and reported as best and median (targets are judged on the
median). Memory is measured in fresh subprocesses so that nothing else shares the heap.
The process runs with the collector settings of the `backorders` CLI (`tune_collector`).

Sections:
1. events/s on the generated trading day (`backorders run` workload);
2. cost of one POReceived / InventoryAdjusted / OrderCreated on a pool of 1k-100k open lines,
   against the from-scratch recomputation of that pool (`reference.sku_targets`);
3. peak memory per million open lines.

`python -m bench.core_bench --quick` runs small sizes only (a smoke run, a few seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random

from backorder_events import InvalidEvent, parse_event, parse_event_obj
from backorders_platform import logs
from backorders_platform.database import sqlite_url
from backorders_workload import WorkloadShape, generate_day
from recalculator.domain.engine import Engine
from recalculator.domain.reference import sku_targets
from recalculator.processing import process
from recalculator.publishing import dead_letter_line, to_json
from recalculator.runtime.embedded import EmbeddedRuntime
from recalculator.runtime.tuning import tune_collector

OUT = Path("var/bench/core.json")
SEED = 42
TARGET_CORE = 50_000  # events/s, in-memory core, run workload
TARGET_EMBEDDED = 10_000  # events/s, embedded runtime with SQLite
TARGET_RECEIPT_RATIO = 100  # from-scratch / incremental POReceived, 100k open lines
TARGET_PO_UPDATE_RATIO = 10  # PurchaseOrderUpdated / POReceived (medians), 100k open lines
OPEN_POS = 20  # open purchase orders spread over the pool's backordered units


# ------------------------------------------------------------------------------- helpers


def stats(samples: list[float]) -> dict:
    return {"repeats": len(samples), "best": min(samples), "median": statistics.median(samples)}


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def table(title: str, header: list[str], rows: list[list[str]], notes: list[str] = (), left: int = 1) -> None:
    """A plain-text table; the first `left` columns are left-aligned, the rest right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]

    def render(cells) -> str:
        return "  ".join(str(c).ljust(w) if i < left else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    print(f"\n{title}")
    print("=" * len(title))
    print(render(header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(render(row))
    for note in notes:
        print(f"  {note}")
    sys.stdout.flush()


def machine() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                cpu = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = None
    try:
        for text in Path("/proc/meminfo").read_text().splitlines():
            if text.startswith("MemTotal:"):
                ram_gib = round(int(text.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": ram_gib,
        "platform": platform.platform(),
        "gc_threshold": list(gc.get_threshold()),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def timed(run, repeats: int) -> list[float]:
    """`run()` does its own set-up and returns the seconds of its timed region."""
    samples = []
    for _ in range(repeats):
        gc.collect()
        samples.append(run())
    return samples


# ------------------------------------------------------------------- section 1: the day


def prepare_day(shape: WorkloadShape) -> tuple[list[tuple[int, str]], list]:
    events = generate_day(SEED, shape)
    records = [(n, e["__raw__"] if "__raw__" in e else to_json(e)) for n, e in enumerate(events, 1)]
    parsed = []
    for _, raw in records:
        try:
            parsed.append(parse_event(raw))
        except InvalidEvent:
            pass  # the deliberately malformed inputs: there is nothing for the core to do
    return records, parsed


def run_core(parsed: list, incremental: bool = True) -> float:
    engine = Engine(incremental=incremental)
    handle = engine.handle
    started = time.perf_counter()
    for event in parsed:
        handle(event)
    return time.perf_counter() - started


def run_processing(records: list[tuple[int, str]]) -> float:
    engine = Engine()
    started = time.perf_counter()
    for position, raw in records:
        result = process(engine, raw, "bench", position)
        for output in result.outputs:
            to_json(output)
        if result.dead_letter is not None:
            dead_letter_line(result.dead_letter)
    return time.perf_counter() - started


def run_embedded(records: list[tuple[int, str]]) -> float:
    async def go(path: Path) -> float:
        runtime = EmbeddedRuntime(sqlite_url(path))
        await runtime.start()
        try:
            started = time.perf_counter()
            await runtime.consume("bench", records)
            return time.perf_counter() - started
        finally:
            await runtime.close()

    with tempfile.TemporaryDirectory(prefix="backorders-bench-") as tmp:
        try:
            return asyncio.run(go(Path(tmp) / "bench.sqlite"))
        finally:
            gc.unfreeze()  # start() froze whatever was alive then; later measures start clean


def section_day(quick: bool) -> dict:
    shapes = [("default", WorkloadShape(orders=5000, skus=300), 5, 3, 3)]
    if quick:
        shapes = [("small", WorkloadShape(orders=500, skus=50), 3, 2, 2)]
    else:
        shapes.append(("large", WorkloadShape(orders=50000, skus=2000), 3, 3, 2))
    results: dict = {"seed": SEED, "shapes": {}}
    rows = []
    baseline = None
    for name, shape, core_reps, proc_reps, emb_reps in shapes:
        records, parsed = prepare_day(shape)
        entry = {"orders": shape.orders, "skus": shape.skus, "inputs": len(records), "parsed": len(parsed)}
        measures = [
            ("core", "(a) core: Engine().handle, pre-parsed", len(parsed),
             timed(lambda: run_core(parsed), core_reps)),
            ("processing", "(b) core + parse + output JSON", len(records),
             timed(lambda: run_processing(records), proc_reps)),
            ("embedded", "(c) embedded runtime, SQLite", len(records),
             timed(lambda: run_embedded(records), emb_reps)),
        ]
        if baseline is None:  # the from-scratch engine, on the first (default) shape only
            measures.append(("from_scratch", "(d) from scratch: Engine(incremental=False)", len(parsed),
                             timed(lambda: run_core(parsed, incremental=False), 3 if not quick else 2)))
        for key, label, count, samples in measures:
            s = stats(samples)
            s.update(events=count, rate_best=count / s["best"], rate_median=count / s["median"])
            entry[key] = s
        entry["ratio_core_vs_from_scratch"] = (
            entry["core"]["rate_median"] / entry["from_scratch"]["rate_median"]
            if "from_scratch" in entry else None
        )
        if baseline is None:
            baseline = entry["from_scratch"]["rate_median"]
        results["shapes"][name] = entry
        for key, label, count, _ in measures:
            s = entry[key]
            target = {"core": TARGET_CORE, "embedded": TARGET_EMBEDDED}.get(key)
            verdict = "" if target is None else (
                f">= {fmt_rate(target)}: {'met' if s['rate_median'] >= target else 'MISSED'}"
            )
            rows.append([
                f"{name} ({shape.orders} orders, {shape.skus} SKUs)", label, str(count),
                str(s["repeats"]), fmt_rate(s["rate_best"]), fmt_rate(s["rate_median"]),
                f"{s['rate_median'] / baseline:.1f}x" if name == shapes[0][0] else "-", verdict,
            ])
    results["baseline_from_scratch_rate"] = baseline
    results["targets"] = {"core_events_per_s": TARGET_CORE, "embedded_events_per_s": TARGET_EMBEDDED}
    table(
        "1. Events/s on the generated trading day (seed 42)",
        ["workload", "measure", "events", "repeats", "best ev/s", "median ev/s", "vs (d)", "target (median)"],
        rows,
        left=2,
        notes=[
            "events: (a)/(d) the parsed events (malformed lines excluded); (b)/(c) every input line",
            "vs (d): median rate over the median rate of the from-scratch engine, default shape, same process",
        ],
    )
    return results


# ------------------------------------------------------------------- section 2: one pool

_T0 = datetime(2025, 1, 1, tzinfo=UTC)
POOL_SKU = "SKU-POOL"


def _ts(seconds: float) -> str:
    return (_T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


class _Events:
    """Input events built through the contract (`parse_event_obj`), with fresh ids."""

    def __init__(self) -> None:
        self.n = 0

    def make(self, type_: str, data: dict, at: float) -> object:
        self.n += 1
        return parse_event_obj({
            "specversion": "1.0", "id": f"bench-{self.n}", "source": "/bench", "type": type_,
            "time": _ts(at), "datacontenttype": "application/json", "data": data,
        })

    def order(self, order_id: str, order_date: float, at: float, sku: str, qty: int) -> object:
        return self.make("OrderCreated", {
            "order_id": order_id, "order_date": _ts(order_date), "order_status": "InProcess",
            "payment_status": "Charged", "payment_date": _ts(order_date), "company_id": "company-1",
            "channel": "Magento",
            "lines": [{"line_id": "1", "sku": sku, "qty": qty, "unit_price": 19.99, "name": "Bench item"}],
        }, at)


def build_pool(size: int, seed: int = 7) -> tuple[Engine, _Events, float, list[float]]:
    """An engine with one SKU whose pool holds `size` open lines of qty 1-3 from distinct
    orders dated one second apart, and stock for about half the units: the boundary sits
    near the middle. Returns the engine, the event factory, the clock and the order dates."""
    rng = Random(seed)
    qtys = [rng.randint(1, 3) for _ in range(size)]
    ev = _Events()
    engine = Engine()
    engine.handle(ev.make("WarehouseUpserted", {"warehouse_id": "WH-MAIN", "type": "Sellable"}, 0))
    engine.handle(ev.make("ProductUpserted", {"sku": POOL_SKU, "name": "Bench item"}, 0))
    engine.handle(ev.make("InventoryAdjusted",
                          {"sku": POOL_SKU, "warehouse_id": "WH-MAIN", "set_to": sum(qtys) // 2}, 0))
    dates = []
    for i, qty in enumerate(qtys):
        date = 1 + i
        dates.append(date)
        engine.handle(ev.order(f"P{i:07d}", date, date, POOL_SKU, qty))
        if i % 500 == 0:
            engine.take_changes()  # as the runtime does once per batch
    engine.take_changes()
    return engine, ev, float(len(qtys) + 1), dates


def _per_event(engine: Engine, event) -> float:
    started = time.perf_counter()
    engine.handle(event)
    return time.perf_counter() - started


def section_pool(quick: bool) -> dict:
    sizes = [1_000, 10_000] if quick else [1_000, 10_000, 100_000]
    reps = 50 if quick else 300
    results: dict = {"sizes": {}, "events_per_measure": reps}
    rows = []
    for size in sizes:
        build_started = time.perf_counter()
        engine, ev, clock, dates = build_pool(size)
        build_seconds = time.perf_counter() - build_started
        pool = engine.pools[(POOL_SKU, None)]
        assert len(pool) == size and pool.boundary is not None  # the set-up, not a speed claim
        boundary_index = pool.queue.index(pool.boundary)
        now = engine.last_time

        # From scratch: the whole pool recomputed, as Engine(incremental=False) does per event.
        scratch = timed(lambda e=engine, t=now: _time_call(lambda: sku_targets(e, POOL_SKU, t)),
                        5 if size >= 100_000 else 11)

        # Receipts: +5 units (times POReceived), then -5 with recalculate (times the
        # adjustment too), so every receipt starts from the same state.
        receipts, adjusts = [], []
        for _ in range(reps):
            clock += 1
            receipts.append(_per_event(engine, ev.make("POReceived", {
                "po_id": "PO-BENCH", "warehouse_id": "WH-MAIN", "lines": [{"sku": POOL_SKU, "qty": 5}]}, clock)))
            adjusts.append(_per_event(engine, ev.make("InventoryAdjusted", {
                "sku": POOL_SKU, "warehouse_id": "WH-MAIN", "delta": -5, "recalculate": True}, clock)))
            engine.take_changes()

        # Expected dates: OPEN_POS open POs share the backordered units out, one a day; then
        # one of them moves a day later and back, each update timed (every line it covers
        # changes date, and so do the lines at the edges of the later arrivals).
        backordered = engine.totals[POOL_SKU]
        for p in range(OPEN_POS):
            engine.handle(ev.make("PurchaseOrderUpdated", {"po_id": f"PO-{p}", "lines": [{
                "sku": POOL_SKU, "qty_ordered": max(1, backordered // OPEN_POS),
                "estimated_delivery_date": _ts(clock + 10 + 2 * p)}]}, clock))
        engine.take_changes()
        po_updates = []
        for j in range(reps):
            clock += 1
            po_updates.append(_per_event(engine, ev.make("PurchaseOrderUpdated", {"po_id": "PO-10", "lines": [{
                "sku": POOL_SKU, "qty_ordered": max(1, backordered // OPEN_POS),
                "estimated_delivery_date": _ts(clock + 30 + (j % 2) * 3)}]}, clock)))
            engine.take_changes()

        # New orders: one line of qty 2, either the newest (goes to the end of the queue) or
        # dated among the allocated lines (lands before the boundary and takes stock from
        # it). Each is cancelled and its SKU recalculated afterwards, outside the timing.
        created = {"end": [], "before_boundary": []}
        older_date = dates[boundary_index // 2] + 0.5
        for j in range(reps):
            for where in created:
                clock += 1
                order_id = f"N-{where}-{j}"
                date = clock if where == "end" else older_date + j * 1e-6
                created[where].append(_per_event(engine, ev.order(order_id, date, clock, POOL_SKU, 2)))
                engine.handle(ev.make("OrderStatusChanged", {"order_id": order_id, "order_status": "Cancelled"}, clock))
                engine.handle(ev.make("RecalculateBackorders", {"skus": [POOL_SKU]}, clock))
                engine.take_changes()

        entry = {
            "open_lines": size,
            "boundary_index": boundary_index,
            "build_seconds": build_seconds,
            "from_scratch_s": stats(scratch),
            "po_received_s": stats(receipts),
            "po_updated_s": stats(po_updates),
            "adjust_recalc_s": stats(adjusts),
            "order_created_end_s": stats(created["end"]),
            "order_created_before_boundary_s": stats(created["before_boundary"]),
        }
        entry["ratio_receipt"] = entry["from_scratch_s"]["median"] / entry["po_received_s"]["median"]
        entry["ratio_po_update"] = entry["po_updated_s"]["median"] / entry["po_received_s"]["median"]
        entry["ratio_order_end"] = entry["from_scratch_s"]["median"] / entry["order_created_end_s"]["median"]
        entry["ratio_order_before"] = (
            entry["from_scratch_s"]["median"] / entry["order_created_before_boundary_s"]["median"]
        )
        results["sizes"][str(size)] = entry
        us = lambda key: f"{entry[key]['median'] * 1e6:,.1f}"  # noqa: E731
        verdict = ""
        if size == 100_000:
            met = entry["ratio_receipt"] >= TARGET_RECEIPT_RATIO
            met_update = entry["ratio_po_update"] <= TARGET_PO_UPDATE_RATIO
            verdict = (f">= {TARGET_RECEIPT_RATIO}x: {'met' if met else 'MISSED'}; PO update "
                       f"<= {TARGET_PO_UPDATE_RATIO}x receipt: {'met' if met_update else 'MISSED'}")
        rows.append([
            f"{size:,}", us("po_received_s"), us("po_updated_s"), f"{entry['ratio_po_update']:.1f}x",
            us("adjust_recalc_s"), us("order_created_end_s"),
            us("order_created_before_boundary_s"), f"{entry['from_scratch_s']['median'] * 1e3:,.2f}",
            f"{entry['ratio_receipt']:,.0f}x", f"{entry['ratio_order_end']:,.0f}x",
            f"{entry['ratio_order_before']:,.0f}x", verdict,
        ])
        del engine, ev, pool
        gc.collect()
    results["target_receipt_ratio_at_100k"] = TARGET_RECEIPT_RATIO
    results["target_po_update_ratio_at_100k"] = TARGET_PO_UPDATE_RATIO
    table(
        "2. One event on a pool of N open lines (median µs per event; from scratch in ms)",
        ["open lines", "POReceived +5", "PO update", "update/receipt", "Adjust -5+recalc", "OrderCreated end", "OrderCreated mid",
         "from scratch ms", "ratio PO", "ratio OC end", "ratio OC mid", "target (PO, 100k)"],
        rows,
        notes=[
            f"{reps} events of each kind per size, each timed alone; one SKU, default settings, lines of qty 1-3,",
            "stock for half the units. 'mid' = an order dated among the allocated lines (before the boundary).",
            "from scratch = reference.sku_targets over the pool (median of several); ratio = from scratch / incremental.",
            f"PO update = PurchaseOrderUpdated moving one of {OPEN_POS} open POs by 3 days and back (expected dates).",
        ],
    )
    return results


def _time_call(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


# ------------------------------------------------------------------- section 3: memory

_FIRST = ("Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Mia", "Lucas")
_LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Lopez", "Wilson")
_CITIES = (("Brooklyn", "NY", "112"), ("Austin", "TX", "787"), ("Denver", "CO", "802"), ("Tampa", "FL", "336"))


def _rss_kib() -> int:
    for text in Path("/proc/self/status").read_text().splitlines():
        if text.startswith("VmRSS:"):
            return int(text.split()[1])
    return 0


def memory_child(lines: int, skus: int, trace: bool) -> dict:
    """Runs in a subprocess: an engine holding `lines` open lines over `skus` SKUs, orders
    shaped like the generated day's (1-4 lines, customer and address, prices, names)."""
    import tracemalloc

    gc.collect()
    baseline_rss = _rss_kib()  # KiB, after imports
    if trace:
        tracemalloc.start()
    rng = Random(11)
    ev = _Events()
    engine = Engine()
    engine.handle(ev.make("WarehouseUpserted", {"warehouse_id": "WH-MAIN", "type": "Sellable"}, 0))
    names = [f"SKU-{i:05d}" for i in range(skus)]
    for sku in names:
        engine.handle(ev.make("ProductUpserted", {"sku": sku, "name": f"Item {sku}"}, 0))
        # Stock for roughly half of what the SKU will be asked for: pools with a boundary.
        engine.handle(ev.make("InventoryAdjusted", {"sku": sku, "warehouse_id": "WH-MAIN",
                                                    "set_to": lines // skus}, 0))
    made = orders = 0
    started = time.perf_counter()
    while made < lines:
        r = rng.random()  # 1-4 lines, 70/20/7/3 as in the generated day
        n = min(1 if r < 0.7 else 2 if r < 0.9 else 3 if r < 0.97 else 4, lines - made)
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        city, state, zip3 = rng.choice(_CITIES)
        date = _ts(orders)
        chosen = rng.sample(names, n)
        event = parse_event_obj({
            "specversion": "1.0", "id": f"mem-{orders}", "source": "/bench", "type": "OrderCreated",
            "time": date, "data": {
                "order_id": str(5_000_000 + orders), "order_date": date, "order_status": "InProcess",
                "payment_status": "Charged", "payment_date": date, "company_id": "company-1",
                "channel": "Magento",
                "customer": {
                    "email": f"{first}.{last}{rng.randrange(999)}@example.com".lower(),
                    "first_name": first, "last_name": last,
                    "shipping_address": {"name": f"{first} {last}", "street1": f"{rng.randrange(9999)} Main St",
                                         "city": city, "state": state, "postal_code": f"{zip3}{rng.randrange(100):02d}",
                                         "country": "US"},
                },
                "lines": [{"line_id": str(k + 1), "sku": sku, "qty": rng.randint(1, 3), "unit_price": 19.99,
                           "name": f"Item {sku}"} for k, sku in enumerate(chosen)],
            },
        })
        engine.handle(event)
        made += n
        orders += 1
        if orders % 500 == 0:
            engine.take_changes()  # as the runtime does once per batch
    engine.take_changes()
    build_seconds = time.perf_counter() - started
    del event
    gc.collect()
    result = {
        "lines": made, "orders": orders, "skus": skus, "build_seconds": build_seconds,
        "open_lines_in_pools": sum(len(pool) for pool in engine.pools.values()),
        "baseline_rss_mib": baseline_rss / 1024,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
        "retained_rss_mib": _rss_kib() / 1024,
    }
    if trace:
        current, peak = tracemalloc.get_traced_memory()
        result.update(traced_current_mib=current / 2**20, traced_peak_mib=peak / 2**20)
        tracemalloc.stop()
    return result


def _spawn(lines: int, skus: int, trace: bool) -> dict:
    cmd = [sys.executable, "-m", "bench.core_bench", "--memory-child", str(lines), str(skus)]
    if trace:
        cmd.append("--trace")
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def section_memory(quick: bool) -> dict:
    runs = [(20_000, 20, False), (20_000, 20, True)] if quick else [
        (1_000_000, 200, False),  # peak RSS, directly at a million
        (200_000, 200, True),  # tracemalloc (slower): 200k lines, scaled to a million
    ]
    results: dict = {"runs": []}
    rows = []
    for lines, skus, trace in runs:
        child = _spawn(lines, skus, trace)
        per_million = 1_000_000 / child["lines"]
        child["peak_rss_over_baseline_mib"] = child["peak_rss_mib"] - child["baseline_rss_mib"]
        child["retained_rss_over_baseline_mib"] = child["retained_rss_mib"] - child["baseline_rss_mib"]
        if trace:  # tracemalloc's own bookkeeping inflates RSS: only the traced figures count
            child["traced_peak_mib_per_million_lines"] = child["traced_peak_mib"] * per_million
            child["traced_current_mib_per_million_lines"] = child["traced_current_mib"] * per_million
            cells = ["-", "-", "-", f"{child['traced_peak_mib_per_million_lines']:,.0f}",
                     f"{child['traced_current_mib_per_million_lines']:,.0f}"]
        else:
            child["peak_mib_per_million_lines"] = child["peak_rss_over_baseline_mib"] * per_million
            child["retained_mib_per_million_lines"] = child["retained_rss_over_baseline_mib"] * per_million
            cells = [f"{child['peak_rss_over_baseline_mib']:,.0f}", f"{child['peak_mib_per_million_lines']:,.0f}",
                     f"{child['retained_mib_per_million_lines']:,.0f}", "-", "-"]
        results["runs"].append(child)
        rows.append([
            f"{child['lines']:,} lines / {child['orders']:,} orders / {skus} SKUs",
            "tracemalloc" if trace else "RSS",
            f"{child['build_seconds']:.1f}",
            *cells,
        ])
    table(
        "3. Memory of open lines (one subprocess per row; MiB; per million lines scaled linearly)",
        ["engine holding", "measured by", "build s", "peak RSS - base", "peak RSS/M lines",
         "retained RSS/M", "traced peak/M", "traced live/M"],
        rows,
        left=2,
        notes=[
            "peak RSS = ru_maxrss after building minus VmRSS after imports; retained = VmRSS after gc minus the same",
            "baseline. Orders of 1-4 lines carry customer, address, prices and names like the generated day;",
            "the engine's take_changes() runs every 500 orders as in the runtime.",
        ],
    )
    return results


# ------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.core_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (a smoke run)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"JSON output (default {OUT})")
    parser.add_argument("--memory-child", nargs=2, type=int, metavar=("LINES", "SKUS"), help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    tune_collector()  # the collector settings every `backorders` command runs with
    logs.configure("error")  # the workload's deliberate dead letters would fill the output
    if args.memory_child:
        print(json.dumps(memory_child(*args.memory_child, args.trace)))
        return 0

    started = time.perf_counter()
    info = machine()
    print(f"backorders core benchmark{' (quick)' if args.quick else ''}: {info['date']}")
    results = {"machine": info, "quick": args.quick}
    results["day"] = section_day(args.quick)
    results["pool"] = section_pool(args.quick)
    results["memory"] = section_memory(args.quick)
    results["seconds"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.out} in {results['seconds']:.0f} s")
    print(
        f"machine: Python {info['python']} ({info['implementation']}), CPU {info['cpu']}, "
        f"{info['cores']} cores, {info['ram_gib']} GiB RAM, {info['platform']}, "
        f"gc thresholds {tuple(info['gc_threshold'])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
