"""The notifier on Kafka: `faust -A notifier.kafka_app worker` (or `backorders worker notifier`).

One agent (concurrency 1) consumes `backorders.backorder-changed` and `backorders.orders` as
raw bytes, in batches; each batch is taken in in one database transaction together with
the offset of its last record per partition. faust's offsets are not trusted: assigned
partitions are sought to the offsets after the stored ones (`faust_support`), and records
at or below them are passed over. A batch whose transaction fails (the database went away)
is tried again until it commits, so no record is skipped.

A task delivers the queued notifications: it claims a few at a time, and puts back claims
older than `sending_lease_seconds` (left by a process that died, possibly after the server
accepted the message: sent again with the same Message-ID). Several instances may run in
one consumer group: intake batches are serialised by a PostgreSQL advisory lock and a
notification is claimed by one instance only.

Configuration from the environment: `BACKORDERS_DATABASE_URL` (or `DATABASE_URL`),
`BACKORDERS_SCHEMA_NAME`, `BACKORDERS_NOTIFIER_CONFIG` (the TOML file; the built-in default
writes `.eml` files under `BACKORDERS_DATA_DIR`/mail), `BACKORDERS_NOTIFIER_GROUP` (the
consumer group, default `backorders-notifier`), `KAFKA_*` and `BACKORDERS_TOPIC_*`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import defaultdict
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict
from recalculator import logs
from recalculator.adapters.repository import make_engine
from recalculator.kafka.faust_support import (
    make_app,
    raw_topic,
    record_batches,
    seek_from_stored,
)
from recalculator.kafka.settings import InputTopics, KafkaSettings, OutputTopics
from sqlalchemy.exc import SQLAlchemyError

from .adapters.store import Store
from .config import NotifierConfig, load
from .defaults import default_config
from .service import NotifierService

log = logs.get("notifier.kafka")


class NotifierWorkerConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKORDERS_")

    database_url: str | None = None
    schema_name: str | None = None
    notifier_config: Path | None = None
    notifier_group: str = "backorders-notifier"
    data_dir: Path = Path("var")
    batch_size: int = 500
    # Notifications claimed per delivery round: few, so that a claim is short-lived.
    delivery_round: int = 10

    def url(self) -> str:
        url = self.database_url or os.environ.get("DATABASE_URL")
        if not url:
            raise RuntimeError("set BACKORDERS_DATABASE_URL (or DATABASE_URL) to the notifier's database")
        return url

    def notifier(self) -> NotifierConfig:
        return load(self.notifier_config) if self.notifier_config else default_config(self.data_dir)


settings = NotifierWorkerConfig()
app = make_app(
    settings.notifier_group, KafkaSettings(),
    # A restarted worker gets the partitions of the one it replaces within seconds.
    broker_session_timeout=6.0, broker_heartbeat_interval=1.0,
)
topic = raw_topic(app, OutputTopics().backorder_changed, InputTopics().orders)

_service: NotifierService | None = None
_ready = asyncio.Lock()
_wake = asyncio.Event()


async def service() -> NotifierService:
    """The service, built once in the worker's event loop (schema migrated on the way)."""
    global _service
    async with _ready:
        if _service is None:
            logs.configure()
            config = settings.notifier()  # ConfigError: the worker stops at start, saying why
            for warning in config.warnings():
                log.warning("configuration_warning", warning=warning)
            store = Store(make_engine(settings.url(), settings.schema_name), settings.schema_name)
            await store.create_schema()
            _service = NotifierService(store, config)
            log.info("notifier_ready", config=config.source, owner=_service.owner)
    return _service


async def stored_positions() -> dict[str, int]:
    return await (await service()).store.positions()


seek_from_stored(app, stored_positions)


@app.agent(topic, concurrency=1)
async def take_in(stream):
    async for records in record_batches(stream, size=settings.batch_size, within=0.2):
        sources: dict[str, list[tuple[int, bytes]]] = defaultdict(list)
        for record in records:
            sources[record.position_key].append((record.offset, record.value))
        notifier = await service()
        pause = 0.5
        while True:
            try:
                tally = await notifier.take_in(dict(sources))
                break
            except (SQLAlchemyError, OSError) as error:
                # Nothing of the batch was committed: the same records are tried again.
                log.error("intake_failed", error=str(error).splitlines()[0], retry_in=pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 10.0)
        if tally.recorded:
            _wake.set()


@app.task
async def deliver() -> None:
    notifier = await service()
    lease = notifier.config.settings.sending_lease_seconds
    next_sweep = 0.0
    while True:
        try:
            if time.time() >= next_sweep:
                requeued = await notifier.store.requeue_claimed(claimed_before=time.time() - lease)
                if requeued:
                    log.warning("claims_requeued", count=requeued, lease_seconds=lease)
                next_sweep = time.time() + min(lease / 2, 5.0)
            tally = await notifier.deliver_due(settings.delivery_round)
            if tally.delivered or tally.failed or tally.retried:
                continue
            due = await notifier.store.next_due()
        except Exception as error:  # noqa: BLE001 - the task must outlive any one round
            # The database went away, or something unforeseen: logged, and the next round
            # tried after the pause (a claim this round left is put back after its lease).
            log.error("delivery_round_failed", kind=type(error).__name__,
                      error=(str(error).splitlines() or [""])[0])
            due = None
        wait = 1.0 if due is None else min(max(due - time.time(), 0.05), 1.0)
        _wake.clear()
        try:
            await asyncio.wait_for(_wake.wait(), wait)
        except TimeoutError:
            pass
