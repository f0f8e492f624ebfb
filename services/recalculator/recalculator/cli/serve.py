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


def register(commands, readers=None) -> None:
    """`readers(args)`: the DownstreamReaders of the operations routes, given by the
    composition root (the recalculator may not import the other services)."""
    parser = commands.add_parser("serve", help="the HTTP API and web console over the state")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", help="SQLite file (or SQLAlchemy URL) holding the state "
                       "(default: $BACKORDERS_DATABASE_URL or var/backorders.sqlite)")
    where.add_argument("--database-url", metavar="URL", help="SQLAlchemy URL of the state, e.g. PostgreSQL")
    parser.add_argument("--schema", help="PostgreSQL schema holding the state (default: the search path)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    parser.add_argument("--log", metavar="FILE", help="the embedded runtime's input log (JSON lines) that actions "
                        "are appended to (default: the Kafka input topics when KAFKA_BOOTSTRAP_SERVERS is set)")
    parser.add_argument("--apply", action="store_true", help="this server applies --log to the state as it grows "
                        "(the embedded runtime in this process; then no other process may write the state)")
    parser.add_argument("--no-console", action="store_true", help="no web console at /console")
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes sharing the port, each with its own loaded engine (default: 1; "
                             "more than one serves the read-only API: no actions, operations or console)")
    parser.set_defaults(handler=handle, readers=readers)
    return parser


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
    if args.workers > 1 and (args.apply or args.log):
        raise CommandError("--workers above 1 serves the read-only API: --log and --apply need one process")
    print(f"backorders API on http://{args.host}:{args.port} (routes: /openapi.json; Ctrl-C stops it)", flush=True)
    options = {"host": args.host, "port": args.port, "log_level": "warning", "access_log": False}
    if args.workers == 1:
        uvicorn.run(create_app(url, args.schema, services=services(args, url)), **options)
        return 0
    # Each process is started afresh (spawned) and builds its own app: the state's address
    # goes to them in the environment.
    os.environ[URL_VARIABLE] = url
    os.environ[SCHEMA_VARIABLE] = args.schema or ""
    uvicorn.run(f"{__name__}:worker_app", factory=True, workers=args.workers, **options)
    return 0


def services(args, url: str):
    """The token, the input log and the readers, from the options and the environment."""
    import os

    from pydantic import ValidationError

    from ..api.auth import ApiSettings, Guard
    from ..api.input_log import FileInputLog, KafkaInputLog
    from ..api.operations import DownstreamReaders
    from ..api.wiring import Services

    try:
        settings = ApiSettings()
        guard = Guard(settings.secret(), settings.read_requires_token)
    except (ValidationError, ValueError) as error:
        raise CommandError(f"API settings: {_one_line(error)}") from None
    if args.apply and not args.log:
        raise CommandError("--apply needs --log FILE: the log this server applies")
    kafka = bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    built = Services(guard=guard, console=not args.no_console)
    if args.log:
        built.input_log = FileInputLog(Path(args.log))
        if args.apply:
            from ..runtime.followed_log import FollowedLog

            built.follower = FollowedLog(url, Path(args.log), args.schema)
    elif kafka:
        built.input_log = KafkaInputLog()
    if kafka:
        from .status import lag

        built.lag = lag
    built.readers = args.readers(args) if args.readers is not None else DownstreamReaders()
    built.audit = audit_of(url, args.schema, Path(args.log) if args.log else None, kafka)
    return built


def audit_of(url: str, schema: str | None, log_file: Path | None, kafka: bool):
    """The consistency check of the console: the state rebuilt from the log against the live
    one (api/audit.py)."""
    from ..api.audit import audit

    async def run() -> list[dict]:
        return await audit(url, schema, log_file=log_file, kafka=kafka)

    return run


def _one_line(error: Exception) -> str:
    """The problem without the value given (it may be the token)."""
    errors = getattr(error, "errors", None)
    if callable(errors):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in errors())
    return str(error)
