"""`backorders search orders --backorder ...` and `backorders search products --backorder-from N
--backorder-to M`: the seed's two backorder searches, over the embedded database."""

from __future__ import annotations

import asyncio
import json

from backorders_platform.commands import add_db_option, database_url
from backorders_platform.database import make_engine
from rich.console import Console
from rich.table import Table
from ..adapters.repository import Repository
from ..adapters.search import ORDER_FILTERS, OrderFilter, order_query, product_query
from ..domain.model import from_us

def register(commands) -> None:
    parser = commands.add_parser("search", help="find backordered orders or products")
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="WHAT")
    orders = kinds.add_parser("orders", help="orders by backorder status")
    orders.add_argument("--backorder", required=True, choices=sorted(ORDER_FILTERS))
    products = kinds.add_parser("products", help="products by total backorder quantity")
    products.add_argument("--backorder-from", type=int, default=1, metavar="N")
    products.add_argument("--backorder-to", type=int, default=None, metavar="M")
    for sub in (orders, products):
        add_db_option(sub)
        sub.add_argument("--limit", type=int, default=None, help="at most this many rows")
        sub.add_argument("--jsonl", action="store_true", help="one JSON object per line")
    orders.set_defaults(handler=handle_orders)
    products.set_defaults(handler=handle_products)


async def find_orders(url: str, backorder: str, limit: int | None = None) -> list[dict]:
    dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
    return await _rows(url, order_query(dialect, OrderFilter(backorder=backorder), limit=limit))


async def find_products(url: str, low: int, high: int | None, limit: int | None = None) -> list[dict]:
    return await _rows(url, product_query(low, high, limit=limit))


async def _rows(url: str, query) -> list[dict]:
    db = make_engine(url)
    try:
        await Repository(db).create_schema()
        async with db.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(query)]
    finally:
        await db.dispose()


def handle_orders(args) -> int:
    rows = asyncio.run(find_orders(database_url(args.db), args.backorder, args.limit))
    for row in rows:
        row["order_date"] = from_us(row["order_date"]).isoformat().replace("+00:00", "Z")
    _show(rows, args.jsonl, f"Orders: {args.backorder} backorder")
    return 0


def handle_products(args) -> int:
    rows = asyncio.run(
        find_products(database_url(args.db), args.backorder_from, args.backorder_to, args.limit)
    )
    _show(rows, args.jsonl, f"Products with backorder from {args.backorder_from} to {args.backorder_to or '∞'}")
    return 0


def _show(rows: list[dict], jsonl: bool, title: str) -> None:
    if jsonl:
        for row in rows:
            print(json.dumps(row))
        return
    console = Console()
    table = Table(title=f"{title} ({len(rows)})")
    if rows:
        for column in rows[0]:
            table.add_column(column)
        for row in rows:
            table.add_row(*(str(value) for value in row.values()))
    console.print(table)
