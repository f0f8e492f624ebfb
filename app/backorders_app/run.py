"""`backorders run [EVENTS.jsonl | -]`

Without a file: the main job on the embedded default — a seeded, generated trading day
through the embedded runtime into a fresh demo database (its own, reset at each run, or a
new file named by `--db`: a database the user named is never deleted), with a progress
bar and a summary.
With a file (or `-` for standard input): a real log into the persistent embedded database,
continuing from the state it holds.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from pathlib import Path

from backorders_platform.commands import CommandError, add_db_option, database_url
from backorders_platform.database import sqlite_url
from backorders_workload import WorkloadShape, generate_day
from recalculator.cli import summary
from recalculator.config import RecalculatorConfig
from recalculator.publishing import to_json
from recalculator.runtime.embedded import EmbeddedRuntime
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from . import downstream


def register(commands) -> None:
    parser = commands.add_parser("run", help="run the embedded service (a generated day by default)")
    parser.add_argument("events", nargs="?", help="a CloudEvents log (JSON lines), or - for stdin")
    add_db_option(parser)
    parser.add_argument("--seed", type=int, default=42, help="seed of the generated day")
    parser.add_argument("--orders", type=int, default=5000, help="orders in the generated day")
    parser.add_argument("--skus", type=int, default=300, help="SKUs in the generated day")
    parser.add_argument("--batch-size", type=int, default=None, help="inputs per transaction")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--no-downstream", action="store_true",
        help="do not run the embedded notifier and channel-sync after the recalculator",
    )
    parser.set_defaults(handler=handle)


def handle(args) -> int:
    config = RecalculatorConfig()
    batch = args.batch_size or config.batch_size
    console = Console(stderr=False)
    if args.events is None:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        if args.db:
            path = _named_demo_db(args.db, config)
        else:
            path = config.demo_db()
            for suffix in ("", "-wal", "-shm"):  # the demo's own database starts afresh
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = sqlite_url(path)
        shape = WorkloadShape(orders=args.orders, skus=args.skus)
        with console.status("generating the trading day…"):
            events = generate_day(args.seed, shape)
        records = [(n, to_json(e) if "__raw__" not in e else e["__raw__"]) for n, e in enumerate(events, 1)]
        source = f"generated:seed={args.seed}"
        title = f"Generated trading day (seed {args.seed}): {shape.orders} orders over {shape.skus} SKUs"
        tracked = True
    else:
        url = database_url(args.db, config)
        if args.events == "-":
            stdin_records: list = []  # kept for the downstream step: stdin cannot be read twice
            records = _captured(enumerate((line for line in sys.stdin.buffer if line.strip()), 1), stdin_records)
            source, tracked, total = "stdin", False, None
        else:
            file = Path(args.events)
            if not file.is_file():
                raise CommandError(f"no such file: {args.events}")
            records = _file_records(file)
            source, tracked = str(file.resolve()), True
        title = f"Log {args.events} into {url}"
    downstream_dir = config.data_dir / "demo" if args.events is None else config.data_dir
    configs = None if args.no_downstream else downstream.load_configs(downstream_dir)
    total = len(records) if isinstance(records, list) else None
    tally, seconds, counts = asyncio.run(
        _consume(url, batch, source, records, tracked, total, not args.no_progress, console)
    )
    summary.render(console, title, tally, seconds, counts)
    console.print(summary.one_line(tally), soft_wrap=True)
    if configs is not None:
        if args.events is None:
            downstream_inputs = records
            for folder in ("mail", "feeds"):  # the demo starts from nothing
                shutil.rmtree(downstream_dir / folder, ignore_errors=True)
        elif args.events == "-":
            downstream_inputs = stdin_records
        else:
            downstream_inputs = _file_records(Path(args.events))
        with console.status("notifying customers and preparing channel feeds…"):
            reports = asyncio.run(downstream.run_all(url, downstream_inputs, source, downstream_dir, configs))
        summary.render_downstream(console, reports)
    if args.events is None:
        command = sys.argv[0] if sys.argv[0].endswith("backorders") else "backorders"
        console.print(
            f"Explore it: {command} search orders --backorder full --db {path}\n"
            f"            {command} explain ORDER_ID --db {path}\n"
            f"Open the console on it: {command} serve --db {path}\n"
            f"            then http://127.0.0.1:8000/console in a browser (the API: "
            f"http://127.0.0.1:8000/orders?backorder=full, every route at /docs)",
            soft_wrap=True,
        )
    return 0


def _named_demo_db(db: str, config: RecalculatorConfig) -> Path:
    """The SQLite file the generated day goes into when `--db` names one. The day starts
    from an empty state, and a database the user named is never deleted: it must not hold
    anything yet."""
    if "://" in db:
        raise CommandError(
            f"the generated day goes into a SQLite file; --db {db} is a URL "
            "(a log goes into any database: backorders run EVENTS.jsonl --db URL)"
        )
    path = Path(db)
    held = [f for f in (path, Path(f"{path}-wal")) if f.exists() and (f.is_dir() or f.stat().st_size > 0)]
    if held:
        raise CommandError(
            f"{db} already exists: the generated day needs a new database and never deletes "
            f"one you named (remove it yourself, name a new file, or leave out --db to use "
            f"{config.demo_db()}, which each run starts afresh)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _captured(records, into: list):
    for record in records:
        into.append(record)
        yield record


def _file_records(file: Path):
    with file.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield number, line


async def _consume(url, batch, source, records, tracked, total, show_progress, console):
    async with EmbeddedRuntime(url, batch_size=batch) as runtime:
        with Progress(
            TextColumn("[bold]processing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, disable=not show_progress, transient=True,
        ) as progress:
            task = progress.add_task("events", total=total)
            counter = [0]

            def advance(_result) -> None:
                counter[0] += 1
                if counter[0] % 250 == 0:
                    progress.update(task, completed=counter[0])

            started = time.perf_counter()
            tally = await runtime.consume(source, records, track_position=tracked, on_processed=advance)
            seconds = time.perf_counter() - started
            progress.update(task, completed=counter[0])
        counts = await summary.gather(runtime.repository)
    return tally, seconds, counts
