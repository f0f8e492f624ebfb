"""The notifier on Kafka, built by `build` from its settings (`faust -A notifier.kafka_app
worker`, or `backorders worker notifier`, builds it from the environment: kafka_app.py).

One agent (concurrency 1) consumes `backorders.backorder-changed` and `backorders.orders` as
raw bytes, in batches; each batch is taken in in one database transaction together with
the offset of its last record per partition. faust's offsets are not trusted: assigned
partitions are sought to the offsets after the stored ones (`faust_support`), and records
at or below them are passed over. No failure skips a record: a batch whose transaction
fails because the database went away is tried again until it commits; one that fails for
any other reason is tried `BACKORDERS_NOTIFIER_INTAKE_ATTEMPTS` times, then its records one
at a time, and a record that still fails is dead-lettered with the traceback while the
others go on (`NotifierService.take_in_records`). A record that cannot be read (not JSON,
refused by the contract, values the database cannot hold, larger than
`BACKORDERS_NOTIFIER_MAX_RECORD_BYTES`) is dead-lettered at once. Should anything still
escape the agent, the worker stops (faust's crashing supervisor) rather than have the agent
restarted past records it never stored.

A task delivers the queued notifications: it claims a few at a time, and puts back claims
older than `sending_lease_seconds` by the database's clock (left by a process that died,
possibly after the server accepted the message: sent again with the same Message-ID). Several instances may run in
one consumer group: intake batches are serialised by a PostgreSQL advisory lock and a
notification is claimed by one instance only.

Configuration from the environment: `BACKORDERS_DATABASE_URL` (or `DATABASE_URL`),
`BACKORDERS_SCHEMA_NAME`, `BACKORDERS_NOTIFIER_CONFIG` (the TOML file; the built-in default
writes `.eml` files under `BACKORDERS_DATA_DIR`/mail; its `[notifier]` section holds the
retention windows), `BACKORDERS_NOTIFIER_GROUP` (the
consumer group, default `backorders-notifier`), `BACKORDERS_NOTIFIER_INTAKE_ATTEMPTS`
(default 3), `BACKORDERS_NOTIFIER_MAX_RECORD_BYTES` (default 1 MiB),
`BACKORDERS_NOTIFIER_PRUNE_EVERY_SECONDS` (default 600), `KAFKA_*` and `BACKORDERS_TOPIC_*`.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from backorder_events.topics import InputTopics, OutputTopics
from backorders_platform import logs
from backorders_platform.database import make_engine
from backorders_platform.faust_support import make_app, raw_topic, record_batches, seek_from_stored
from backorders_platform.kafka_settings import KafkaSettings
from backorders_platform.redaction import first_line
from backorders_platform.retrying import until_done
from backorders_platform.screening import MAX_RECORD_BYTES
from mode import CrashingSupervisor
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .adapters.store import Store
from .config import NotifierConfig, load
from .defaults import default_config
from .service import Consumed, NotifierService

log = logs.get("notifier.kafka")


class NotifierWorkerConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKORDERS_", env_ignore_empty=True, populate_by_name=True)

    database_url: str | None = Field(None, validation_alias=AliasChoices("BACKORDERS_DATABASE_URL", "DATABASE_URL"))
    schema_name: str | None = None
    notifier_config: Path | None = None
    notifier_group: str = "backorders-notifier"
    data_dir: Path = Path("var")
    batch_size: int = 500
    # Notifications claimed per delivery round: few, so that a claim is short-lived.
    delivery_round: int = 10
    # A batch (then a record) whose intake fails this often while the database answers is
    # split up (then dead-lettered): BACKORDERS_NOTIFIER_INTAKE_ATTEMPTS.
    notifier_intake_attempts: int = 3
    # Records larger than this are dead-lettered unread: BACKORDERS_NOTIFIER_MAX_RECORD_BYTES.
    notifier_max_record_bytes: int = MAX_RECORD_BYTES
    # How often old rows are pruned (the windows are in the configuration file):
    # BACKORDERS_NOTIFIER_PRUNE_EVERY_SECONDS.
    notifier_prune_every_seconds: float = 600.0

    def url(self) -> str:
        if not self.database_url:
            raise RuntimeError("set BACKORDERS_DATABASE_URL (or DATABASE_URL) to the notifier's database")
        return self.database_url

    def notifier(self) -> NotifierConfig:
        return load(self.notifier_config) if self.notifier_config else default_config(self.data_dir)


class _Running:
    """The service, built once in the worker's event loop by whoever needs it first."""

    def __init__(self) -> None:
        self.service: NotifierService | None = None
        self.ready = asyncio.Lock()
        self.wake = asyncio.Event()  # notifications may be due


class NotifierKafkaWorker:
    """The faust app of the notifier and what runs in it: the intake agent (`take_in`),
    the delivery and prune tasks, over one service (`running`)."""

    def __init__(self, settings: NotifierWorkerConfig, kafka: KafkaSettings, inputs: InputTopics,
                 outputs: OutputTopics) -> None:
        self.settings = settings
        self.running = _Running()
        self.app = make_app(
            settings.notifier_group, kafka,
            # A restarted worker gets the partitions of the one it replaces within seconds.
            broker_session_timeout=6.0, broker_heartbeat_interval=1.0,
        )
        self.topic = raw_topic(self.app, outputs.backorder_changed, inputs.orders)
        seek_from_stored(self.app, self.stored_positions)
        # Nothing escapes `take_in_records` but a bug of its own; should one, the worker stops
        # (started again, it resumes from the stored positions) instead of faust restarting the
        # agent past the batch it was holding.
        self.take_in = self.app.agent(self.topic, name="notifier.kafka_app.take_in", concurrency=1,
                                      supervisor_strategy=CrashingSupervisor)(self._take_in)
        self.app.task(self._deliver)
        self.app.task(self._prune)

    async def service(self) -> NotifierService:
        """The service, built once in the worker's event loop (schema migrated on the way; a
        database that does not answer yet is waited for)."""
        settings, running = self.settings, self.running
        async with running.ready:
            if running.service is None:
                logs.configure()
                config = settings.notifier()  # ConfigError: the worker stops at start, saying why
                for warning in config.warnings():
                    log.warning("configuration_warning", warning=warning)
                store = Store(make_engine(settings.url(), settings.schema_name), settings.schema_name)
                await until_done(store.create_schema, on_error=_log_start_error)
                running.service = NotifierService(store, config, intake_attempts=settings.notifier_intake_attempts,
                                                  max_record_bytes=settings.notifier_max_record_bytes)
                log.info("notifier_ready", config=config.source, owner=running.service.owner)
        return running.service

    async def stored_positions(self) -> dict[str, int]:
        return await (await self.service()).store.positions()

    async def _take_in(self, stream):
        notifier = await self.service()
        async for records in record_batches(stream, size=self.settings.batch_size, within=0.2):
            tally = await notifier.take_in_records(
                [Consumed(record.position_key, record.offset, record.value) for record in records])
            if tally.recorded:
                self.running.wake.set()

    async def _deliver(self) -> None:
        notifier = await self.service()
        wake = self.running.wake
        lease = notifier.config.settings.sending_lease_seconds
        next_sweep = 0.0
        while True:
            try:
                if time.monotonic() >= next_sweep:
                    await notifier.requeue_expired_claims()
                    next_sweep = time.monotonic() + min(lease / 2, 5.0)
                tally = await notifier.deliver_due(self.settings.delivery_round)
                if tally.delivered or tally.failed or tally.retried:
                    continue
                due = await notifier.store.next_due()
            except Exception as error:  # noqa: BLE001 - the task must outlive any one round
                # The database went away, or something unforeseen: logged, and the next round
                # tried after the pause (a claim this round left is put back after its lease).
                log.error("delivery_round_failed", kind=type(error).__name__,
                          error=first_line(error))
                due = None
            wait = 1.0 if due is None else min(max(due - notifier.clock(), 0.05), 1.0)
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), wait)
            except TimeoutError:
                pass

    async def _prune(self) -> None:
        """Every `BACKORDERS_NOTIFIER_PRUNE_EVERY_SECONDS` (and once at start), what the
        retention windows no longer keep is deleted, in small transactions of its own."""
        notifier = await self.service()
        while True:
            try:
                await notifier.prune()
            except Exception as error:  # noqa: BLE001 - tried again at the next period
                log.error("prune_failed", kind=type(error).__name__, error=first_line(error))
            await asyncio.sleep(self.settings.notifier_prune_every_seconds)


def _log_start_error(error: BaseException, outage: bool, failures: int, retry_in: float) -> None:
    log.error("notifier_start_failed", kind=type(error).__name__, error=(str(error).splitlines() or [""])[0],
              retry_in=retry_in)
