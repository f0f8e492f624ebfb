"""What `backorders channels …` and `backorders worker channel-sync` do (see `cli.py`)."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime

from backorders_platform.commands import CommandError, database_url
from backorders_platform.database import make_engine
from backorders_platform.logs import LogSettings
from backorders_platform.settings import StorageSettings
from rich.console import Console
from rich.table import Table

from . import config as config_module
from .adapters import lock
from .adapters.store import Store
from .service import ChannelSyncService


def load_config(path: str | None):
    """`--config`, else $CHANNEL_SYNC_CONFIG, else $BACKORDERS_CHANNELS_CONFIG, else the
    built-in default (`config.load_configured`)."""
    try:
        return config_module.load_configured(path, StorageSettings().data_dir)
    except config_module.ConfigError as error:
        raise CommandError("invalid channel configuration:\n  " + "\n  ".join(error.problems)) from None


async def _with_service(args, work, *, with_sinks: bool, exclusive: bool = False):
    """With `exclusive` (a push), the channel-sync lock is tried first: a worker running on
    the same state pushes itself, and two pushers would send the same rows."""
    config = load_config(args.config)
    db = make_engine(database_url(args.db), args.schema)
    held = None
    try:
        if exclusive:
            taken, held = await lock.try_hold(db, args.schema)
            if not taken:
                raise CommandError(
                    "a channel-sync worker is running on this state"
                    + (f" (schema {args.schema})" if args.schema else "")
                    + ": it pushes the changed rows itself; stop it to push from here"
                )
        service = await ChannelSyncService(Store(db, args.schema), config).start(with_sinks=with_sinks)
        try:
            return config, await work(service, config)
        finally:
            await service.close()
    finally:
        await lock.release(held)
        await db.dispose()


def _check_channel(config, name: str) -> None:
    if name not in config.enabled():
        known = ", ".join(config.enabled()) or "none"
        raise CommandError(f"no enabled channel {name!r} (configured: {known})")


def handle_preview(args) -> int:
    async def work(service, config):
        _check_channel(config, args.channel)
        return await service.preview(args.channel, full=args.full)

    _, report = asyncio.run(_with_service(args, work, with_sinks=False))
    limit = args.limit if args.limit is not None else (0 if args.json else 20)
    rows = report.rows if not limit else report.rows[:limit]
    if args.json:
        for sku, row in rows:
            print(json.dumps({"sku": sku, "row": row}, sort_keys=True))
        return 0
    console = Console()
    console.print(
        f"[bold]{args.channel}[/bold]: {len(report.rows)} rows to send "
        f"({report.pending} SKUs looked at, {report.unchanged} unchanged)"
    )
    for sku, row in rows:
        console.print(f"{sku}: {json.dumps(row, sort_keys=True)}", soft_wrap=True, markup=False)
    if len(rows) < len(report.rows):
        console.print(f"… and {len(report.rows) - len(rows)} more (--limit 0 shows all)")
    return 0


def handle_push(args) -> int:
    async def work(service, config):
        names = args.channels or list(config.enabled())
        for name in names:
            _check_channel(config, name)
        return [await service.push(name, full=args.full) for name in names]

    _, reports = asyncio.run(_with_service(args, work, with_sinks=True, exclusive=True))
    table = Table(title="Channel push")
    for column in ("channel", "SKUs looked at", "unchanged", "sent", "accepted", "refused", "given up"):
        table.add_column(column, justify="left" if column == "channel" else "right")
    for r in reports:
        table.add_row(r.channel, *(str(v) for v in (r.pending, r.unchanged, r.sent, r.accepted, r.rejected, r.gave_up)))
    Console().print(table)
    failed = sum(r.rejected + r.gave_up for r in reports)
    if failed:
        print(f"{failed} rows failed: backorders channels failures", file=sys.stderr)
    return 1 if failed else 0


def handle_failures(args) -> int:
    async def work(service, config):
        return await service.store.failures(args.channel, include_resolved=args.all, limit=args.limit)

    _, rows = asyncio.run(_with_service(args, work, with_sinks=False))
    if args.json:
        for row in rows:
            record = dict(row._mapping)
            record["row"] = json.loads(record["row"])
            print(json.dumps(record, sort_keys=True))
        return 0
    table = Table(title="Channel failures" + (" (all)" if args.all else " (open)"))
    for column in ("when", "channel", "sku", "kind", "status", "tries"):
        table.add_column(column, no_wrap=True)
    table.add_column("answer")
    for row in rows:
        table.add_row(row.failed_at, row.channel, row.sku, row.kind, str(row.status or "-"), str(row.attempts),
                      row.body[:160].replace("\n", " "))
    # Piped into a file or a pager, a table as wide as its content.
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    return 0


def handle_dead_letters(args) -> int:
    async def work(service, config):
        return await service.store.dead_letters(args.limit)

    _, rows = asyncio.run(_with_service(args, work, with_sinks=False))
    if args.json:
        for row in rows:
            record = dict(row._mapping)
            record["recorded_at"] = datetime.fromtimestamp(row.recorded_at, UTC).isoformat(timespec="seconds")
            print(json.dumps(record, sort_keys=True))
        return 0
    table = Table(title=f"Channel-sync dead letters ({len(rows)})")
    for column in ("when", "source", "position", "event"):
        table.add_column(column, no_wrap=True)
    table.add_column("reason")
    table.add_column("raw")
    for row in rows:
        event = " ".join(part for part in (row.event_type, row.event_id) if part)
        table.add_row(datetime.fromtimestamp(row.recorded_at, UTC).strftime("%Y-%m-%d %H:%M:%S"), row.source,
                      str(row.position), event, (row.reason.splitlines() or [""])[0][:300], row.raw[:120])
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    return 0


def handle_worker(args) -> int:
    """Runs `faust -A channel_sync.kafka_app worker` in this process."""
    from .kafka_app import app

    chosen = (args.loglevel or LogSettings().log_level).lower()
    level = {"warning": "warn", "critical": "crit"}.get(chosen, chosen)
    sys.argv = ["backorders worker channel-sync", "worker", "--without-web", "--loglevel", level]
    app.main()
    return 0  # pragma: no cover - app.main() exits
