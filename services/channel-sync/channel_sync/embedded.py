"""Channel-sync in the embedded runtime (`make run`): after the recalculator has committed a
log to its database, channel-sync takes in the same raw inputs (purchase orders,
containers, product names, the feed settings) and the SkuPositionChanged events of the
recalculator's outbox (read by `seq`, never changed), then pushes every channel.

Its tables live in the same database. Positions are stored per input source and for the
outbox, and each channel keeps the rows it accepted, so running it again over the same
database sends nothing new. With no configuration file the built-in default lists Wayfair,
Overstock and Magento with the file sink: payloads are written under `<data_dir>/feeds`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from recalculator.adapters import tables as recalculator_tables
from backorders_platform.database import make_engine
from backorders_platform.embedded_summary import EmbeddedSummary
from sqlalchemy import inspect, select

from . import config as config_module
from .adapters.store import Store
from .service import ChannelSyncService, PushReport, Record, TakenIn

OUTBOX_SOURCE = "outbox"
INPUT_PREFIX = "input:"
BATCH = 1000


async def run_embedded(
    db_url: str,
    inputs: Iterable[tuple[int, bytes | str]],
    source: str,
    *,
    data_dir: Path,
    config_path: Path | None = None,
    config: config_module.ChannelsConfig | None = None,
) -> EmbeddedSummary:
    """Take in `inputs` (the records the recalculator consumed from `source`) and the
    SkuPositionChanged events of the outbox at `db_url`, push every channel, summarise.

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
            taken.add(await take_in_outbox(service))
            reports = await service.push_all()
            await service.prune()
            counts = await service.store.counts()
        finally:
            await service.close()
    finally:
        await db.dispose()
    return summarise(config, taken, reports, counts)


async def take_in_outbox(service: ChannelSyncService, *, batch: int = BATCH) -> TakenIn:
    """Every SkuPositionChanged of the recalculator's outbox after the stored position."""
    tally = TakenIn()
    db = service.store.db
    async with db.connect() as conn:
        if not await conn.run_sync(lambda c: inspect(c).has_table(recalculator_tables.outbox.name)):
            return tally  # no recalculator in this database
    outbox = recalculator_tables.outbox
    while True:
        after = await service.store.position(OUTBOX_SOURCE) or 0
        query = (
            select(outbox.c.seq, outbox.c.payload)
            .where(outbox.c.seq > after, outbox.c.event_type == "SkuPositionChanged")
            .order_by(outbox.c.seq).limit(batch)
        )
        async with db.connect() as conn:
            rows = (await conn.execute(query)).all()
        if not rows:
            return tally
        tally.add(await service.take_in(Record(OUTBOX_SOURCE, seq, payload) for seq, payload in rows))


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

