"""Runtime configuration from the environment (BACKORDERS_*), with defaults that need no
servers: everything lives under ./var."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from backorders_platform.settings import StorageSettings
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class RecalculatorConfig(StorageSettings):
    batch_size: int = 1000

    def demo_db(self) -> Path:
        return self.data_dir / "demo.sqlite"


class RetentionSettings(BaseSettings):
    """How long the recalculator keeps what it needs less and less as time goes by
    (docs/behaviour.md, Retention). Windows are business time: measured against the newest
    applied input event time (commands do not move it), never the wall clock, so a replay of
    a log forgets and evicts at the same events as the live run did. Durations are ISO 8601 (`P30D`, `PT36H`) or seconds.

    These are the runtime's settings, not the seller's client settings of the rules: the
    engine receives the windows it applies as plain arguments (`engine_options`)."""

    model_config = SettingsConfigDict(env_prefix="BACKORDERS_")

    # An event is a duplicate when one with the same source and id was applied within this
    # window; an event older than it is refused (a redelivery that old is not recognisable).
    dedupe_window: timedelta = Field(default=timedelta(days=30), gt=timedelta(0))
    # A Completed/Cancelled/Void order is forgotten this long after it closed (once none of
    # its lines can still publish a backorder).
    closed_order_retention: timedelta = Field(default=timedelta(days=30), gt=timedelta(0))
    # Outbox rows and dead letters the relay has sent are deleted this long after they were
    # recorded.
    outbox_retention: timedelta = Field(default=timedelta(days=7), gt=timedelta(0))
    dead_letter_retention: timedelta = Field(default=timedelta(days=30), gt=timedelta(0))
    # How often the relay prunes (wall-clock seconds; 0: never).
    prune_every_seconds: float = Field(default=60.0, ge=0)
    # A manual action naming an order not known yet waits this long for it (business time),
    # then is dead-lettered; 0: refused at once.
    action_wait: timedelta = Field(default=timedelta(minutes=10), ge=timedelta(0))

    @field_validator(
        "dedupe_window", "closed_order_retention", "outbox_retention", "dead_letter_retention",
        "action_wait", mode="before",
    )
    @classmethod
    def _seconds(cls, value):
        """A duration may be given as a number of seconds ("90", "0.5"), as well as in ISO
        8601: from the environment it arrives as text, which pydantic reads as ISO 8601 only."""
        if isinstance(value, str):
            try:
                return timedelta(seconds=float(value))
            except (ValueError, OverflowError):  # not a number (pydantic says why), or too large
                return value
        return value

    def engine_options(self) -> dict[str, timedelta | None]:
        """The keyword arguments of `Engine`, `Router` and `ShardedEngine` for these windows."""
        return {
            "dedupe_window": self.dedupe_window,
            "closed_order_retention": self.closed_order_retention,
            "action_wait": self.action_wait or None,
        }
