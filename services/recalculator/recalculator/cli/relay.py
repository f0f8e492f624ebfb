"""`backorders relay`: publish the embedded database's outbox to Kafka."""

from __future__ import annotations

import asyncio
import signal
import sys

from backorders_platform import locks
from backorders_platform.commands import CommandError, add_db_option, database_url
from backorders_platform.database import make_engine
from backorders_platform.kafka_settings import KafkaSettings
from pydantic import ValidationError

from ..adapters.repository import Repository
from ..kafka.relay import RELAY_SOURCE, OutboxRelay
from ..kafka.relay import lock_id as relay_lock_id


def register(commands) -> None:
    parser = commands.add_parser(
        "relay", help="publish the outbox to Kafka (KAFKA_* environment variables)"
    )
    add_db_option(parser)
    parser.add_argument("--once", action="store_true", help="drain the outbox, then stop")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--schema", help="PostgreSQL schema holding the outbox")
    parser.add_argument("--poll-ms", type=int, default=50, help="outbox poll interval when it is drained")
    parser.set_defaults(handler=handle)


async def relay(url: str, once: bool, batch_size: int, schema: str | None = None, poll_ms: int = 50) -> int:
    """One relay is active per outbox: while another one runs, this one waits as a standby
    (saying so on standard error) and takes over when it stops; SIGINT and SIGTERM stop it,
    waiting or not."""
    try:
        kafka = KafkaSettings()
    except ValidationError as error:
        raise CommandError(f"Kafka settings: {error.errors()[0]['msg']}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    db = make_engine(url, schema)
    sent = 0
    try:
        repository = Repository(db, schema)
        await repository.create_schema()
        taken, probe = await locks.try_hold(db, relay_lock_id(schema))
        await locks.release(probe)
        if not taken:
            print("another relay is running on this outbox: waiting to take over (Ctrl-C to give up)",
                  file=sys.stderr, flush=True)
        with locks.waits_end_with(stop):
            async with OutboxRelay(repository, kafka, batch_size=batch_size) as outbox:
                try:
                    if once:
                        sent = await outbox.relay_all(stop)
                    else:
                        await outbox.run(stop, idle_seconds=poll_ms / 1000)
                except locks.WaitStopped:
                    print("stopped while another relay was running on this outbox", file=sys.stderr)
        position = await repository.position(RELAY_SOURCE) or 0
    finally:
        await db.dispose()
    print(f"relayed {sent} events; outbox position {position}")
    return 0


def handle(args) -> int:
    return asyncio.run(relay(database_url(args.db), args.once, args.batch_size, args.schema, args.poll_ms))
