"""`backorders dead-letters`: the inputs that were refused, with why and where from."""

from __future__ import annotations

import asyncio

from backorders_platform.commands import add_db_option, database_url
from backorders_platform.database import make_engine
from rich.console import Console
from rich.table import Table

from ..adapters.repository import Repository


def register(commands) -> None:
    parser = commands.add_parser("dead-letters", help="list refused inputs and their reasons")
    add_db_option(parser)
    parser.add_argument("--jsonl", action="store_true", help="one JSON record per line")
    parser.set_defaults(handler=handle)


async def dead_letters(url: str):
    db = make_engine(url)
    try:
        repository = Repository(db)
        await repository.create_schema()
        return await repository.dead_letter_records()
    finally:
        await db.dispose()


def handle(args) -> int:
    records = asyncio.run(dead_letters(database_url(args.db)))
    if args.jsonl:
        for record in records:
            print(record.model_dump_json())
        return 0
    table = Table(title=f"Dead letters ({len(records)})")
    for column in ("source", "position", "event id", "type", "reason"):
        table.add_column(column)
    for record in records:
        table.add_row(
            record.source, str(record.position), record.event_id or "", record.event_type or "",
            record.reason,
        )
    Console().print(table)
    return 0
