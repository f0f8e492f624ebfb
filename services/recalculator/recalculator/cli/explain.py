"""`backorders explain ORDER_ID`: why each line of an order has its backorder."""

from __future__ import annotations

import asyncio
import dataclasses
import json

from backorders_platform.commands import CommandError, add_db_option, database_url
from backorders_platform.database import make_engine
from rich.console import Console
from rich.table import Table

from ..adapters.repository import Repository
from ..domain.engine import Engine
from ..domain.explain import explain_order


def register(commands) -> None:
    parser = commands.add_parser("explain", help="explain an order's backorder quantities")
    parser.add_argument("order_id")
    add_db_option(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=handle)


async def load_engine(url: str) -> Engine:
    db = make_engine(url)
    try:
        repository = Repository(db)
        await repository.create_schema()
        engine = Engine()
        await repository.load(engine)
        return engine
    finally:
        await db.dispose()


def handle(args) -> int:
    engine = asyncio.run(load_engine(database_url(args.db)))
    order = engine.orders.get(args.order_id)
    if order is None:
        raise CommandError(f"unknown order {args.order_id!r}")
    lines = explain_order(engine, args.order_id)
    if args.json:
        print(json.dumps({"order_id": order.order_id, "status": order.published_status,
                          "lines": [dataclasses.asdict(line) for line in lines]}, indent=2))
        return 0
    console = Console()
    console.print(
        f"[bold]Order {order.order_id}[/bold] ({order.company_id}): backorder status "
        f"[bold]{order.published_status}[/bold]; order status {order.order_status}, "
        f"payment {order.payment_status}{', rush' if order.rush else ''}{', picked' if order.picked else ''}"
    )
    for line in lines:
        table = Table(title=f"line {line.line_id}: {line.sku} × {line.qty}", show_header=False)
        table.add_column("what")
        table.add_column("value")
        table.add_row("backorder (published)", str(line.published))
        table.add_row("state", line.state + (" (manual value)" if line.manual else ""))
        table.add_row("expected date", (line.expected_date or "none: no dated supply on order covers it")
                      + (f" (last published {line.published_expected_date})"
                         if line.published_expected_date != line.expected_date else ""))
        if line.pool is not None:
            table.add_row("pool", line.pool)
            table.add_row("supply", f"{line.supply} physical, {line.held_by_frozen} held by frozen lines, {line.available} available")
        if line.position is not None:
            table.add_row("place in queue", f"{line.position} of {line.queue_length}")
            table.add_row("ahead of it", f"{line.ahead_count} line(s) needing {line.ahead_qty}")
            for other in line.ahead:
                table.add_row("", f"order {other.order_id} line {other.line_id}: qty {other.qty}, allocated {other.allocated}")
            if line.ahead_count > len(line.ahead):
                table.add_row("", f"… and {line.ahead_count - len(line.ahead)} more")
            table.add_row("allocated now", str(line.allocated + line.from_replacement))
        for reason in line.reasons:
            table.add_row("why", reason)
        console.print(table)
    return 0
