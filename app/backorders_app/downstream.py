"""The notifier and channel-sync in the embedded runtime, wired to the recalculator: each
receives the recalculator's published events (its outbox read as events, never its
tables) and the raw inputs (for the customer data and the purchase orders they keep
themselves), in the same database, writing emails and feeds under a data folder."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from backorders_platform.commands import CommandError
from backorders_platform.database import make_engine
from backorders_platform.embedded_summary import EmbeddedSummary
from channel_sync import config as channels
from channel_sync import embedded as channels_embedded
from notifier import configured as notifier_configured
from notifier import embedded as notifier_embedded
from notifier.config import ConfigError as NotifierConfigError
from recalculator.adapters.published import OutboxEvents


def load_configs(data_dir: Path) -> dict:
    """The notifier's and the channel-sync's configurations, checked before anything runs
    (`BACKORDERS_NOTIFIER_CONFIG`, `BACKORDERS_CHANNELS_CONFIG`; built-in defaults that
    write files under `data_dir` otherwise)."""
    try:
        notifier_config = notifier_configured.load_configured(data_dir=data_dir)
    except NotifierConfigError as error:
        raise CommandError(str(error)) from None
    try:
        channels_config = channels.load_configured(data_dir=data_dir)
    except channels.ConfigError as error:
        raise CommandError("channel configuration:\n  " + "\n  ".join(error.problems)) from None
    return {"notifier": notifier_config, "channels": channels_config}


async def run_all(url: str, inputs, source: str, data_dir: Path, configs: dict) -> list[EmbeddedSummary]:
    inputs = list(inputs)
    return [
        await notify(url, inputs, source, data_dir=data_dir, config=configs["notifier"]),
        await sync_channels(url, inputs, source, data_dir=data_dir, config=configs["channels"]),
    ]


async def notify(url: str, inputs: Iterable[tuple[int, bytes | str]], source: str, **options) -> EmbeddedSummary:
    """`notifier.embedded.run_embedded` over the recalculator's events published at `url`."""
    return await _over_published(notifier_embedded.run_embedded, url, inputs, source, **options)


async def sync_channels(url: str, inputs: Iterable[tuple[int, bytes | str]], source: str,
                        **options) -> EmbeddedSummary:
    """`channel_sync.embedded.run_embedded` over the recalculator's events published at `url`."""
    return await _over_published(channels_embedded.run_embedded, url, inputs, source, **options)


async def _over_published(run_embedded, url: str, inputs, source: str, **options) -> EmbeddedSummary:
    db = make_engine(url)
    try:
        return await run_embedded(url, inputs, source, published=OutboxEvents(db), **options)
    finally:
        await db.dispose()
