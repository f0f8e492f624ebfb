"""Channel-sync in the embedded runtime (`make run`): after the recalculator has committed a
log to its database, channel-sync takes in the same raw inputs (purchase orders,
containers, product names, the feed settings) and the SkuPositionChanged events the
recalculator published (handed over by the composition root as `PublishedEvents`), then
pushes every channel.

Its tables live in the same database. Positions are stored per input source and for the
published events, and each channel keeps the rows it accepted, so running it again over the same
database sends nothing new. With no configuration file the built-in default lists Wayfair,
Overstock and Magento with the file sink: payloads are written under `<data_dir>/feeds`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from backorders_platform.database import make_engine
from backorders_platform.embedded_summary import EmbeddedSummary
from backorders_platform.published import PublishedEvents

from . import config as config_module
from .adapters.store import Store
from .service import ChannelSyncService, PushReport, Record, TakenIn

PUBLISHED_SOURCE = "outbox"  # the name its position is stored under (databases hold it)
INPUT_PREFIX = "input:"
BATCH = 1000


async def run_embedded(
    db_url: str,
    inputs: Iterable[tuple[int, bytes | str]],
    source: str,
    *,
    published: PublishedEvents,
    data_dir: Path,
    config_path: Path | None = None,
    config: config_module.ChannelsConfig | None = None,
) -> EmbeddedSummary:
    """Take in `inputs` (the records the recalculator consumed from `source`) and the
    SkuPositionChanged events it `published`, push every channel, summarise.

    `config`: the configuration already loaded and checked (`config.load_configured`, so a
    bad file is refused before the recalculator runs); else `config_path` is read, else
    the built-in default (file sinks under `<data_dir>/feeds`)."""
    if config is None and config_path is None:
        config = config_module.default_config(Path(data_dir))
    elif config is None:
        config = config_module.load(Path(config_path), Path(data_dir))
    db = make_engine(db_url)
    try:
        service = await ChannelSyncService(Store(db), config).start()
        try:
            taken = await service.consume(INPUT_PREFIX + source, inputs, batch_size=BATCH)
            taken.add(await take_in_published(service, published))
            reports = await service.push_all()
            await service.prune()
            counts = await service.store.counts()
        finally:
            await service.close()
    finally:
        await db.dispose()
    return summarise(config, taken, reports, counts)


async def take_in_published(service: ChannelSyncService, published: PublishedEvents, *,
                            batch: int = BATCH) -> TakenIn:
    """Every SkuPositionChanged published after the stored position."""
    tally = TakenIn()
    after = await service.store.position(PUBLISHED_SOURCE) or 0
    async for chunk in published.after(after, types={"SkuPositionChanged"}, batch=batch):
        tally.add(await service.take_in(Record(PUBLISHED_SOURCE, e.position, e.payload) for e in chunk))
    return tally


def summarise(config, taken: TakenIn, reports: dict[str, PushReport], counts: dict) -> EmbeddedSummary:
    rows: list[tuple[str, str | int]] = []
    for name, report in reports.items():
        channel = config.channels[name]
        where = str(config.feeds_dir / name) if channel.sink == "file" else channel.url
        now = counts.get(name, {})
        rows.append((f"{name}: rows sent / accepted", f"{report.sent} / {report.accepted}"))
        rows.append((f"{name}: SKUs listed (accepted rows)", now.get("accepted", 0)))
        if report.rejected or report.gave_up or now.get("failures"):
            rows.append((f"{name}: failed rows (open)", now.get("failures", 0)))
        rows.append((f"{name}: to", where))
    rows.append(("events taken in (feed-related)", taken.applied))
    if taken.dead_letters:
        rows.append(("dead letters (this run)", taken.dead_letters))
    return EmbeddedSummary("Channel feeds", rows)

