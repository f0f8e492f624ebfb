"""`backorders serve`: the read-only HTTP API over the recalculator's state (docs/api.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from backorders_platform.commands import CommandError, database_url
from backorders_platform.database import make_engine

from ..adapters.repository import Repository


def register(commands) -> None:
    parser = commands.add_parser("serve", help="the read-only HTTP API over the state")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", help="SQLite file (or SQLAlchemy URL) holding the state "
                       "(default: $BACKORDERS_DATABASE_URL or var/backorders.sqlite)")
    where.add_argument("--database-url", metavar="URL", help="SQLAlchemy URL of the state, e.g. PostgreSQL")
    parser.add_argument("--schema", help="PostgreSQL schema holding the state (default: the search path)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    parser.set_defaults(handler=handle)


def state_url(args) -> str:
    """The state the API reads: a SQLite file must exist already (the API never makes an
    empty one)."""
    if args.database_url:
        return args.database_url
    if args.db and "://" not in args.db and not Path(args.db).is_file():
        raise CommandError(f"no database at {args.db}: `backorders run` writes one")
    return database_url(args.db)


async def prepare(url: str, schema: str | None) -> None:
    """Bring the state's tables to the latest migration, as every command reading it does."""
    db = make_engine(url, schema)
    try:
        await Repository(db, schema).create_schema()
    finally:
        await db.dispose()


def handle(args) -> int:
    import uvicorn  # only this command needs the server

    from ..api.app import create_app

    if not 1 <= args.port <= 65535:
        raise CommandError(f"--port {args.port} is not a port number")
    url = state_url(args)
    asyncio.run(prepare(url, args.schema))
    app = create_app(url, args.schema)
    print(f"backorders API on http://{args.host}:{args.port} (routes: /openapi.json; Ctrl-C stops it)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0
