"""faust-streaming as a host for the project's Kafka consumers, without trusting its offsets.

faust-streaming can commit offsets past messages that were never processed, and its
exactly-once mode has open defects. So a consumer built on it keeps its own position: the
offset of the last record of each partition it handled is stored in the database transaction
that holds the state the record produced. Two things make that position the truth:

- when partitions are assigned, faust seeks them to Kafka's committed offsets; right after
  that (and before any record flows) every assigned partition is sought again, to the offset
  after the stored one (`seek_from_stored`);
- the handler skips records at or below the stored offset (a redelivery after a crash).

faust's own commits then only decide nothing; its tables and transactions are not used.
Agents run with concurrency 1, so the records of a partition are handled in order.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import faust

from .kafka_settings import KafkaSettings

StoredPositions = Callable[[], Awaitable[dict[str, int]]]


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One Kafka record as bytes, and where it was read."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes

    @property
    def position_key(self) -> str:
        return f"{self.topic}:{self.partition}"


def make_app(app_id: str, settings: KafkaSettings | None = None, **conf: Any) -> faust.App:
    """A faust App on the configured brokers (SASL/SSL from `KAFKA_*`), with no web server
    and no tables; `conf` overrides faust settings."""
    settings = settings or KafkaSettings()
    brokers = [f"kafka://{server.strip()}" for server in settings.bootstrap_servers.split(",")]
    options: dict[str, Any] = {
        "broker": brokers,
        "broker_client_id": settings.client_id,
        "web_enabled": False,
        "topic_allow_declare": True,
        "consumer_auto_offset_reset": "earliest",
        "store": "memory://",
    }
    credentials = _credentials(settings)
    if credentials is not None:
        options["broker_credentials"] = credentials
    options.update(conf)
    return faust.App(app_id, **options)


def _credentials(settings: KafkaSettings):
    context = None
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=settings.ssl_cafile)
        if settings.ssl_certfile:
            context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile)
    if settings.security_protocol.startswith("SASL"):
        password = settings.sasl_password.get_secret_value() if settings.sasl_password else None
        return faust.SASLCredentials(
            username=settings.sasl_username, password=password, ssl_context=context,
            mechanism=settings.sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def raw_topic(app: faust.App, *names: str) -> faust.TopicT:
    """Topics read as bytes: parsing (and dead-lettering what cannot be parsed) is the
    handler's business, not faust's."""
    return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")


def seek_from_stored(app: faust.App, stored: StoredPositions) -> None:
    """After faust's seek to the committed offsets that follows every assignment, seek each
    assigned partition to the offset after the one stored with the state."""
    consumer = app.consumer
    seek_committed = consumer.perform_seek

    async def perform_seek() -> None:
        await seek_committed()
        positions = await stored()
        for tp in consumer.assignment():
            last = positions.get(f"{tp.topic}:{tp.partition}")
            await consumer.seek(tp, 0 if last is None else last + 1)

    consumer.perform_seek = perform_seek  # type: ignore[method-assign]


async def record_batches(stream: faust.StreamT, *, size: int, within: float) -> AsyncIterator[list[RawRecord]]:
    """Up to `size` records at a time (or what arrived within `within` seconds)."""
    async for events in stream.take_events(size, within=within):
        yield [
            RawRecord(
                event.message.topic, event.message.partition, event.message.offset,
                event.message.key, event.message.value,
            )
            for event in events
        ]
