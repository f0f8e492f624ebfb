"""The notifier in the embedded runtime (`make run`): after the recalculator has committed a
log to its database, the notifier takes in the same raw inputs (for its projection of
customers) and the recalculator's published `BackorderChanged` events (handed over by the
composition root as `PublishedEvents`), then delivers.

Its tables live in the same database. Positions are kept per input source and for the
published events, so running it again over the same database takes in and sends nothing new.
With no configuration file (argument or `BACKORDERS_NOTIFIER_CONFIG`) the built-in default
applies: every message is written as an `.eml` file under `<data_dir>/mail`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

from backorders_platform.database import make_engine
from backorders_platform.embedded_summary import EmbeddedSummary
from backorders_platform.published import PublishedEvents

from .adapters.store import Store
from .config import FileProfile, NotifierConfig
from .configured import load_configured
from .domain.intake import FAILED, PENDING, QUEUED, SENT, SUPPRESSED, IntakeTally
from .service import DeliveryTally, NotifierService

PUBLISHED_SOURCE = "outbox"  # the name its position is stored under (databases hold it)
BATCH = 1000


async def run_embedded(
    db_url: str,
    inputs: Iterable[tuple[int, bytes | str]],
    source: str,
    *,
    published: PublishedEvents,
    data_dir: Path,
    config_path: Path | None = None,
    config: NotifierConfig | None = None,
    wait_for_retries: float = 60.0,
) -> EmbeddedSummary:
    """Take in `inputs` (the records the recalculator consumed from `source`) and the
    events it `published`, deliver what is due, and summarise. The
    configuration is `config` when given (already loaded and checked, e.g. by
    `configured.load_configured` before the recalculator ran), else `config_path`, else
    `$BACKORDERS_NOTIFIER_CONFIG`, else the built-in default; a file that does not check
    out raises ConfigError."""
    if config is None:
        config = load_configured(config_path, data_dir=data_dir)
    db = make_engine(db_url)
    try:
        store = Store(db)
        await store.create_schema()
        service = NotifierService(store, config)
        # This process is the only one delivering from this database: a claim left by a
        # run that was killed is put back at once (sent again, with the same Message-ID).
        await store.requeue_claimed()
        intake = IntakeTally()
        for chunk in _batches(inputs, BATCH):
            intake.add(await service.take_in({source: chunk}))
        async for chunk in published.after(await store.position(PUBLISHED_SOURCE) or 0, batch=BATCH):
            # Every event moves the position; only BackorderChanged is a record to take in.
            records = [(e.position, e.payload if e.type == "BackorderChanged" else None) for e in chunk]
            intake.add(await service.take_in({PUBLISHED_SOURCE: records}))
        delivered = await service.deliver_all(wait_for_retries=wait_for_retries)
        await service.prune()
        counts = await store.counts()
    finally:
        await db.dispose()
    return summarise(config, intake, delivered, counts)


def summarise(config: NotifierConfig, intake: IntakeTally, delivered: DeliveryTally,
              counts: dict[str, int]) -> EmbeddedSummary:
    folders = sorted({str(p.directory) for p in config.profiles.values() if isinstance(p, FileProfile)})
    rows: list[tuple[str, str | int]] = [
        ("orders marked as backorder (this run)", intake.transitions),
        ("emails written to files (this run)", delivered.sent.get("file", 0)),
        ("emails sent by SMTP (this run)", delivered.sent.get("smtp", 0)),
        ("delivered (all time)", counts.get(SENT, 0)),
        ("failed (all time)", counts.get(FAILED, 0)),
        ("waiting for customer data (all time)", counts.get(PENDING, 0)),
        ("waiting for a retry", counts.get(QUEUED, 0)),
        ("suppressed by the cool-down (all time)", counts.get(SUPPRESSED, 0)),
        ("no template assigned (this run)", intake.unassigned),
    ]
    if intake.dead_letters:
        rows.append(("dead letters (this run)", intake.dead_letters))
    if folders:
        rows.append(("mail folder", ", ".join(folders)))
    rows.append(("configuration", config.source))
    return EmbeddedSummary("Backorder emails", rows)


def _batches(records: Iterable[tuple[int, bytes | str]], size: int) -> Iterator[list]:
    iterator = iter(records)
    while chunk := list(islice(iterator, size)):
        yield chunk
