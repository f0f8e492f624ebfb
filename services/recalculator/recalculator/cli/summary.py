"""The tables printed at the end of `backorders run`."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from sqlalchemy import desc, func, select

from ..adapters import tables as t
from ..adapters.repository import Repository
from ..processing import Tally

STATUSES = ("Full", "Partial", "None")


async def gather(repository: Repository) -> dict:
    async with repository.db.connect() as conn:
        by_status = dict(
            (row[0], row[1])
            for row in await conn.execute(
                select(t.orders.c.backorder_status, func.count()).group_by(t.orders.c.backorder_status)
            )
        )
        top = (
            await conn.execute(
                select(t.sku_backorders.c.sku, t.sku_backorders.c.backorder_qty)
                .where(t.sku_backorders.c.backorder_qty > 0)
                .order_by(desc(t.sku_backorders.c.backorder_qty), t.sku_backorders.c.sku)
                .limit(10)
            )
        ).all()
        outbox = (await conn.execute(select(func.count()).select_from(t.outbox))).scalar_one()
        dead = (await conn.execute(select(func.count()).select_from(t.dead_letters))).scalar_one()
    return {"by_status": by_status, "top": top, "outbox": outbox, "dead": dead}


def render(console: Console, title: str, tally: Tally, seconds: float, counts: dict) -> None:
    console.print(f"[bold]{title}[/bold]")
    orders = Table(title="Orders by backorder status", min_width=32)
    orders.add_column("status")
    orders.add_column("orders", justify="right")
    by_status = counts.get("by_status", {})
    for status in STATUSES:
        orders.add_row(status, str(by_status.get(status, 0)))
    orders.add_row("total", str(sum(by_status.values())))
    console.print(orders)

    skus = Table(title="Most backordered SKUs", min_width=32)
    skus.add_column("sku")
    skus.add_column("backorder qty", justify="right")
    for sku, qty in counts.get("top", []):
        skus.add_row(sku, str(qty))
    console.print(skus)

    run = Table(title="This run")
    run.add_column("what")
    run.add_column("value", justify="right")
    rate = tally.total / seconds if seconds > 0 else 0.0
    run.add_row("inputs", str(tally.total))
    run.add_row("applied", str(tally.applied))
    run.add_row("duplicates skipped", str(tally.duplicates))
    run.add_row("dead-lettered", str(tally.dead_lettered))
    run.add_row("held for their orders", str(tally.held))
    run.add_row("held, then applied", str(tally.released))
    run.add_row("held, then dead-lettered", str(tally.held_dead_lettered))
    run.add_row("events published", str(tally.outputs))
    run.add_row("dead letters stored (all time)", str(counts.get("dead", 0)))
    run.add_row("outbox events (all time)", str(counts.get("outbox", 0)))
    run.add_row("seconds", f"{seconds:.2f}")
    run.add_row("events/s", f"{rate:,.0f}")
    console.print(run)


def render_downstream(console: Console, reports: list) -> None:
    """What the embedded notifier and channel-sync did (each report: `title`, `rows`)."""
    for report in reports:
        table = Table(title=report.title, min_width=32)
        table.add_column("what")
        table.add_column("value", justify="right")
        for what, value in report.rows:
            table.add_row(str(what), f"{value:,}" if isinstance(value, int) else str(value))
        console.print(table)


def one_line(tally: Tally) -> str:
    """The plain summary line shared by `run` and `replay` (easy to grep)."""
    return (
        f"{tally.total} inputs: {tally.applied} applied, {tally.duplicates} duplicates skipped, "
        f"{tally.dead_lettered} dead-lettered, {tally.held} held for their orders "
        f"({tally.released} applied and {tally.held_dead_lettered} dead-lettered after waiting); "
        f"{tally.outputs} events published"
    )
