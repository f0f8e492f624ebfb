"""Channel-sync on Kafka, built by `ChannelSyncKafkaWorker` from its settings (`faust -A
channel_sync.kafka_app worker`, or `backorders worker channel-sync`, builds it from the
environment: kafka_app.py), its state in PostgreSQL.

One agent (concurrency 1) reads, as raw bytes, the recalculator's `SkuPositionChanged`
topic and the input topics carrying purchase orders, containers, receipts (inventory),
product names and settings (reference). Each batch of records goes through
`ChannelSyncService.take_in`, which commits the projection with the offset of the last
record of each partition in one transaction and passes over records at or before the
stored offset; after partitions are assigned every one is sought to the offset after the
stored one (`faust_support.seek_from_stored`). faust's own offset commits decide nothing.
No failure loses a record (`ChannelSyncService.take_in_records`): a record that cannot be
read is dead-lettered in the batch's transaction; a batch that fails because the database
went away is tried again until it commits; one that fails for any other reason is tried
`CHANNEL_SYNC_INTAKE_ATTEMPTS` times, then its records one at a time, and a record that
still fails is dead-lettered with the traceback while the others go on.
After each batch is committed a background task is woken to push the changed rows; it
also pushes every `CHANNEL_SYNC_PUSH_EVERY_SECONDS` what is still pending (a channel that
was down). The agent never waits for a channel: a push retrying a channel that is down for
minutes does not keep it from polling (which would make Kafka take its partitions away),
and records go on being taken in meanwhile.

One active instance: the projection covers every partition. Before its Kafka consumer
starts, the worker takes a PostgreSQL session advisory lock named after its schema
(`adapters/lock.py`) and holds it for its life; a second worker waits for it as a standby,
outside the consumer group, and takes over when the first one goes away. The lock can be
lost unnoticed (PostgreSQL restarted under the worker): so the worker also claims the state
before loading it, and every transaction it writes in is fenced by that claim
(`Store.claim`). A worker whose claim was taken by another stops (it would only be
refused): started again, it waits for the lock as a standby.

Start it with `--without-web` (faust's web server is not used; without the flag it
listens on 127.0.0.1:`CHANNEL_SYNC_WEB_PORT`, default 6067).

Environment: `CHANNEL_SYNC_DATABASE_URL` (else `BACKORDERS_DATABASE_URL`, else
`DATABASE_URL`), `CHANNEL_SYNC_SCHEMA`, `CHANNEL_SYNC_CONFIG` (else
`BACKORDERS_CHANNELS_CONFIG`; none: the built-in file sinks under `BACKORDERS_DATA_DIR`),
`CHANNEL_SYNC_APP_ID` (the consumer group), `CHANNEL_SYNC_BATCH_SIZE`,
`CHANNEL_SYNC_PUSH_EVERY_SECONDS`, `CHANNEL_SYNC_SESSION_TIMEOUT_SECONDS`,
`CHANNEL_SYNC_INTAKE_ATTEMPTS` (default 3), `CHANNEL_SYNC_MAX_RECORD_BYTES` (default 1 MiB),
`CHANNEL_SYNC_PRUNE_EVERY_SECONDS` (default 600), `KAFKA_*` and `BACKORDERS_TOPIC_*`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from backorder_events.topics import InputTopics, OutputTopics
from backorders_platform import logs
from backorders_platform.database import FencedOut, make_engine
from backorders_platform.faust_support import make_app, raw_topic, record_batches, seek_from_stored
from backorders_platform.kafka_settings import KafkaSettings
from backorders_platform.redaction import first_line
from backorders_platform.retrying import until_done
from backorders_platform.screening import MAX_RECORD_BYTES
from backorders_platform.settings import StorageSettings
from mode import CrashingSupervisor
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from . import config as config_module
from .adapters import lock
from .adapters.store import Store
from .service import ChannelSyncService, Record

log = logs.get("channel_sync.worker")


class WorkerConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHANNEL_SYNC_", env_ignore_empty=True, populate_by_name=True)

    database_url: str | None = Field(None, validation_alias=AliasChoices(
        "CHANNEL_SYNC_DATABASE_URL", "BACKORDERS_DATABASE_URL", "DATABASE_URL"))
    schema_name: str | None = Field(None, validation_alias=AliasChoices(
        "CHANNEL_SYNC_SCHEMA_NAME", "CHANNEL_SYNC_SCHEMA"))
    config: Path | None = None
    app_id: str = "backorders-channel-sync"
    batch_size: int = 500
    batch_seconds: float = 0.5
    push_every_seconds: float = 30.0
    web_port: int = 6067
    session_timeout_seconds: float = 10.0
    # A batch (then a record) whose intake fails this often while the database answers is
    # split up (then dead-lettered).
    intake_attempts: int = 3
    max_record_bytes: int = MAX_RECORD_BYTES  # larger records are dead-lettered unread
    prune_every_seconds: float = 600.0  # the windows are the configuration's [retention]

    def url(self) -> str:
        if not self.database_url:
            raise SystemExit("channel-sync: set CHANNEL_SYNC_DATABASE_URL (or DATABASE_URL) to its PostgreSQL database")
        return self.database_url

    def schema(self) -> str | None:
        return self.schema_name

    def channels(self, data_dir: Path) -> config_module.ChannelsConfig:
        try:
            return config_module.load_configured(self.config, data_dir)
        except config_module.ConfigError as error:
            # Checked when the worker starts: a readable message, not a traceback.
            raise SystemExit("channel-sync: invalid channel configuration:\n  " + "\n  ".join(error.problems)) from None


class _Running:
    """The lock (taken before the consumer starts), then the service, started once (the
    database migrated, the projection loaded) by whoever needs it first: the seek after an
    assignment, the agent, or the pusher."""

    def __init__(self, settings: WorkerConfig, channels: config_module.ChannelsConfig) -> None:
        self.settings = settings
        self.channels = channels
        self.service: ChannelSyncService | None = None
        self.db = None
        self.lock_connection = None
        self._starting = asyncio.Lock()
        self.wanted = asyncio.Event()  # rows may be waiting to be pushed

    def engine(self):
        if self.db is None:
            self.db = make_engine(self.settings.url(), self.settings.schema())
        return self.db

    async def hold_lock(self) -> None:
        log.info("waiting_for_lock", schema=self.settings.schema())
        self.lock_connection = await lock.hold(self.engine(), self.settings.schema())
        log.info("lock_acquired", schema=self.settings.schema())

    async def get(self) -> ChannelSyncService:
        """Started once: the state claimed, then the projection loaded (a database that
        does not answer yet is waited for)."""
        async with self._starting:
            if self.service is None:
                db, settings = self.engine(), self.settings
                service = ChannelSyncService(Store(db, settings.schema()), self.channels,
                                             intake_attempts=settings.intake_attempts,
                                             max_record_bytes=settings.max_record_bytes)
                await until_done(service.start, on_error=_log_start_error, fatal=(FencedOut,))
                self.service = service
                log.info("channel_sync_started", channels=list(self.channels.enabled()), owner=service.store.owner)
        return self.service

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.close()
            self.service = None
        await lock.release(self.lock_connection)
        self.lock_connection = None
        if self.db is not None:
            await self.db.dispose()
            self.db = None


class ChannelSyncKafkaWorker:
    """The faust app of channel-sync and what runs in it: the intake agent (`take_in`), the
    pusher and pruner tasks, over one service (`running`); the channel configuration is
    loaded and checked when it is built."""

    def __init__(self, settings: WorkerConfig, kafka: KafkaSettings, inputs: InputTopics, outputs: OutputTopics,
                 storage: StorageSettings) -> None:
        self.settings = settings
        self.running = _Running(settings, settings.channels(storage.data_dir))
        # faust's worker command turns its web server on unless given --without-web: then it
        # listens on the loopback only, on CHANNEL_SYNC_WEB_PORT.
        # A worker killed without leaving its group holds its partitions until the session times
        # out; a restarted one waits that long before it is given them.
        self.app = app = make_app(
            settings.app_id, kafka, web_bind="127.0.0.1", web_port=settings.web_port,
            datadir=str(storage.data_dir / "channel-sync-faust"),  # faust's own files
            broker_session_timeout=settings.session_timeout_seconds,
            broker_heartbeat_interval=min(3.0, settings.session_timeout_seconds / 3),
        )
        source = raw_topic(app, outputs.sku_position_changed, inputs.inventory, inputs.reference)
        # The lock before anything joins the consumer group: the app's first start runs before
        # its services (the consumer among them) are started.
        first_start = app.on_first_start

        async def on_first_start() -> None:
            await self.running.hold_lock()
            await first_start()

        app.on_first_start = on_first_start  # type: ignore[method-assign]
        seek_from_stored(app, self._stored_positions)
        # Nothing escapes `take_in_records` but `FencedOut` (another process claimed the state)
        # or a bug of its own: then the worker stops rather than faust restarting the agent past
        # the records it never stored; started again, it resumes from the stored positions.
        self.take_in = app.agent(source, name="channel_sync.kafka_app.take_in", concurrency=1,
                                 supervisor_strategy=CrashingSupervisor)(self._take_in)
        app.task(self._pusher)
        app.task(self._pruner)
        app.on_before_shutdown.connect(self._close)

    async def _stored_positions(self) -> dict[str, int]:
        return await (await self.running.get()).store.positions()

    async def _deposed(self, error: FencedOut) -> None:
        """Another process claimed the state: this worker stops (it could only be refused);
        started again it waits for the lock as a standby."""
        log.error("fenced_out", error=str(error))
        await self.app.crash(error)

    async def _take_in(self, stream) -> None:
        service, settings = await self.running.get(), self.settings
        async for records in record_batches(stream, size=settings.batch_size, within=settings.batch_seconds):
            try:
                taken = await service.take_in_records([Record(r.position_key, r.offset, r.value) for r in records])
            except FencedOut as error:
                await self._deposed(error)
                raise
            if taken.applied:
                self.running.wanted.set()  # the pusher sends; the agent goes back to polling

    async def _pusher(self) -> None:
        """Pushes when the agent committed something, and every `push_every_seconds` what is
        still pending (a channel that did not answer). A failing push is logged and tried
        again at the next round; it never holds the agent."""
        running = self.running
        service = await running.get()
        while True:
            try:
                await asyncio.wait_for(running.wanted.wait(), self.settings.push_every_seconds)
            except TimeoutError:
                pass
            running.wanted.clear()
            try:
                for name, report in (await service.push_all()).items():
                    if report.sent:
                        log.info("pushed", channel=name, sent=report.sent, accepted=report.accepted,
                                 rejected=report.rejected, gave_up=report.gave_up)
            except FencedOut as error:
                await self._deposed(error)
                return
            except Exception as error:  # noqa: BLE001 - the database or a sink went away: next round
                log.warning("push_failed",
                            error=service.sinks.redactor(f"{type(error).__name__}: {error}".splitlines()[0]))
                await asyncio.sleep(1.0)

    async def _pruner(self) -> None:
        """Every `CHANNEL_SYNC_PRUNE_EVERY_SECONDS` (and once at start), what the `[retention]`
        windows no longer keep is deleted, in small transactions of its own."""
        service = await self.running.get()
        while True:
            try:
                await service.prune()
            except FencedOut as error:
                await self._deposed(error)
                return
            except Exception as error:  # noqa: BLE001 - tried again at the next period
                log.error("prune_failed", kind=type(error).__name__, error=first_line(error))
            await asyncio.sleep(self.settings.prune_every_seconds)

    async def _close(self, app_, **kwargs) -> None:
        await self.running.stop()


def _log_start_error(error: BaseException, outage: bool, failures: int, retry_in: float) -> None:
    log.error("channel_sync_start_failed", kind=type(error).__name__,
              error=first_line(error), retry_in=retry_in)
