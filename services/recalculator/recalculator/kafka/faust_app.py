"""The recalculator under faust-streaming: `faust -A recalculator.kafka.faust_app worker`.

faust hosts the process (startup, signals, shutdown, logging); the consuming is the same
`RecalculatorWorker` as `backorders worker recalculator`. The recalculator is a single
active instance that takes every input partition itself (all SKUs' pools share one state),
so faust's consumer group does not decide who consumes, and faust's offsets and
transactions are not used: positions are stored with the state (see `worker.py`).

Configuration from the environment: `BACKORDERS_DATABASE_URL` (or `DATABASE_URL`),
`BACKORDERS_SCHEMA`, `BACKORDERS_BATCH_SIZE`, `BACKORDERS_RECALC_EVERY_MINUTES` (default 30),
`BACKORDERS_IDLE_BOUND_MS` (default 50),
`KAFKA_*` and `BACKORDERS_TOPIC_*`.

faust finds the app as an attribute of the module it is pointed at (`-A`), so this module
builds it, from `KAFKA_*`, when imported: nothing else in the recalculator reads the
environment on import. The worker's own settings are read when its task starts.
"""

from __future__ import annotations

import asyncio

from backorders_platform import logs
from backorders_platform.faust_support import make_app
from backorders_platform.kafka_settings import KafkaSettings
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..ordering import DEFAULT_IDLE_BOUND_MS
from ..runtime.tuning import tune_collector
from .worker import RecalculatorWorker


class FaustWorkerConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKORDERS_", env_ignore_empty=True, populate_by_name=True)

    database_url: str | None = Field(None, validation_alias=AliasChoices("BACKORDERS_DATABASE_URL", "DATABASE_URL"))
    schema_name: str | None = None  # BACKORDERS_SCHEMA_NAME
    batch_size: int = 1000
    recalc_every_minutes: float = 30
    idle_bound_ms: float = DEFAULT_IDLE_BOUND_MS  # BACKORDERS_IDLE_BOUND_MS (docs/behaviour.md)

    def url(self) -> str:
        if not self.database_url:
            raise RuntimeError("set BACKORDERS_DATABASE_URL (or DATABASE_URL) to the state's database")
        return self.database_url


app = make_app("backorders-recalculator", KafkaSettings())


@app.task
async def recalculate() -> None:
    config = FaustWorkerConfig()
    tune_collector()
    logs.configure()
    stop = asyncio.Event()
    try:
        async with RecalculatorWorker(
            config.url(), schema=config.schema_name, batch_size=config.batch_size,
            recalc_every_seconds=config.recalc_every_minutes * 60,
            idle_bound_seconds=config.idle_bound_ms / 1000,
        ) as worker:
            await worker.run(stop)
    except asyncio.CancelledError:  # faust is stopping the worker
        stop.set()
        raise
