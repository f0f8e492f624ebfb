"""`backorders relay`: publish the embedded database's outbox to Kafka."""

from __future__ import annotations

import asyncio
import signal

from pydantic import ValidationError

from ..adapters.repository import Repository, make_engine
from ..kafka.relay import RELAY_SOURCE, OutboxRelay
from ..kafka.settings import KafkaSettings
from .common import CommandError, add_db_option, database_url


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
    try:
        kafka = KafkaSettings()
    except ValidationError as error:
        raise CommandError(f"Kafka settings: {error.errors()[0]['msg']}") from None
    db = make_engine(url, schema)
    try:
        repository = Repository(db, schema)
        await repository.create_schema()
        async with OutboxRelay(repository, kafka, batch_size=batch_size) as outbox:
            if once:
                sent = await outbox.relay_all()
            else:
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, stop.set)
                await outbox.run(stop, idle_seconds=poll_ms / 1000)
                sent = 0
        position = await repository.position(RELAY_SOURCE) or 0
    finally:
        await db.dispose()
    print(f"relayed {sent} events; outbox position {position}")
    return 0


def handle(args) -> int:
    return asyncio.run(relay(database_url(args.db), args.once, args.batch_size, args.schema, args.poll_ms))
