"""The recalculator commands' options that the environment may give (BACKORDERS_*), read
when a command runs (`backorders_platform.commands.options`): `status` and `rebuild` read
only the number of shards, the worker all of them."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from ..ordering import DEFAULT_IDLE_BOUND_MS


class ShardOptions(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKORDERS_", env_ignore_empty=True)

    shards: int = 0  # BACKORDERS_SHARDS (docs/sharding.md)


class WorkerOptions(ShardOptions):
    metrics_port: int = 9464  # BACKORDERS_METRICS_PORT
    recalc_every_minutes: float = 30.0  # BACKORDERS_RECALC_EVERY_MINUTES
    idle_bound_ms: float = float(DEFAULT_IDLE_BOUND_MS)  # BACKORDERS_IDLE_BOUND_MS
