"""`backorders serve`: the read-only HTTP API over the recalculator's state (docs/api.md)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from backorders_platform.commands import CommandError, database_url
from backorders_platform.database import make_engine

from ..adapters.repository import Repository

# How `--workers` processes learn which state to serve: each builds its app from these.
URL_VARIABLE = "BACKORDERS_SERVE_URL"
SCHEMA_VARIABLE = "BACKORDERS_SERVE_SCHEMA"


def register(commands) -> None:
    parser = commands.add_parser("serve", help="the read-only HTTP API over the state")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", help="SQLite file (or SQLAlchemy URL) holding the state "
                       "(default: $BACKORDERS_DATABASE_URL or var/backorders.sqlite)")
    where.add_argument("--database-url", metavar="URL", help="SQLAlchemy URL of the state, e.g. PostgreSQL")
    parser.add_argument("--schema", help="PostgreSQL schema holding the state (default: the search path)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes sharing the port, each with its own loaded engine (default: 1)")
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


def worker_app():
    """The app of one `--workers` process (uvicorn's factory)."""
    from ..api.app import create_app

    return create_app(os.environ[URL_VARIABLE], os.environ.get(SCHEMA_VARIABLE) or None)


def handle(args) -> int:
    import uvicorn  # only this command needs the server

    from ..api.app import create_app

    if not 1 <= args.port <= 65535:
        raise CommandError(f"--port {args.port} is not a port number")
    if not 1 <= args.workers <= 64:
        raise CommandError(f"--workers {args.workers} is not between 1 and 64")
    url = state_url(args)
    asyncio.run(prepare(url, args.schema))
    print(f"backorders API on http://{args.host}:{args.port} (routes: /openapi.json; Ctrl-C stops it)", flush=True)
    options = {"host": args.host, "port": args.port, "log_level": "warning", "access_log": False}
    if args.workers == 1:
        uvicorn.run(create_app(url, args.schema), **options)
        return 0
    # Each process is started afresh (spawned) and builds its own app: the state's address
    # goes to them in the environment.
    os.environ[URL_VARIABLE] = url
    os.environ[SCHEMA_VARIABLE] = args.schema or ""
    uvicorn.run(f"{__name__}:worker_app", factory=True, workers=args.workers, **options)
    return 0
