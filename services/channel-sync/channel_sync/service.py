"""Channel-sync's application service, shared by the embedded runtime, the Kafka worker and
the `backorders channels` commands.

- `take_in(records)`: raw records (input events and SkuPositionChanged) into the projection;
  the projection rows, the SKUs each channel must look at again and the sources' positions
  are committed in one transaction. Records at or before a source's stored position are
  passed over, so a redelivery or a replay changes nothing.
- `push(channel)`: for the pending SKUs, the channel's rows (a pure function of the
  projection), compared with the last rows the channel accepted; only those that differ
  are sent, in batches, and each batch's answers are recorded in one transaction.

One lock serialises both, so a push never reads a projection a failed commit left ahead of
the database (the projection is then reloaded from it).

A record that cannot be taken in is dead-lettered (`channel_sync_dead_letters`) with the
reason, and no failure loses one: `take_in_records` tries a failing batch again, then its
records one at a time, and dead-letters the one that keeps failing
(`recalculator/retrying.py`). A process that writes claims the state first (`Store.claim`),
so its writes stop the moment another process has claimed it (`FencedOut`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from backorder_events import SkuPositionChanged, parse_event_obj
from backorders_platform import consumer_store, logs
from backorders_platform.consumer_intake import Intake
from backorders_platform.database import FencedOut
from backorders_platform.redaction import first_line
from backorders_platform.screening import MAX_RECORD_BYTES, Refused, Screen

from .adapters.store import Store
from .channels.base import ACCEPTED, GAVE_UP, REJECTED, Batch
from .channels.factory import Sinks
from .config import ChannelsConfig
from .domain import feeds
from .domain.projection import EVERY_SKU, Projection

log = logs.get("channel_sync")

INPUT_TYPES = frozenset(
    {"PurchaseOrderUpdated", "ContainerUpdated", "POReceived", "ProductUpserted", "SettingsChanged"}
)
POSITION_TYPE = "SkuPositionChanged"


def parse(raw: bytes | str | None):
    """The event a raw record carries when it concerns the feeds, else None (also when it
    cannot be read: see `read_record`)."""
    event = read_record(raw)
    return None if isinstance(event, Refused) else event


def _from_contract(obj: dict):
    if obj["type"] == POSITION_TYPE:
        return SkuPositionChanged.model_validate(obj)
    return parse_event_obj(obj)


# Channel-sync reads records with `orjson` and refuses a lone surrogate in any string.
SCREEN = Screen(types=INPUT_TYPES | {POSITION_TYPE}, parse=_from_contract, decoder="orjson", surrogates="all")


def read_record(raw: bytes | str | None, max_bytes: int = MAX_RECORD_BYTES):
    """The event a raw record carries when it concerns the feeds; None when it does not
    (another event type, or no record); `Refused` with the reason when it cannot be taken
    in (`recalculator/screening.py`): too large, not UTF-8 or JSON, no event type, refused
    by the contract whatever its parser raises, or values the database cannot hold."""
    return SCREEN.record(raw, max_bytes)


@dataclass(frozen=True, slots=True)
class Record:
    source: str  # the key its position is stored under (a file, "outbox", topic:partition)
    position: int
    raw: bytes | str


@dataclass(slots=True)
class TakenIn:
    records: int = 0  # records looked at
    applied: int = 0  # events that concern the feeds
    skipped: int = 0  # at or before the stored position
    dead_letters: int = 0  # records that could not be taken in

    def add(self, other: TakenIn) -> None:
        self.records += other.records
        self.applied += other.applied
        self.skipped += other.skipped
        self.dead_letters += other.dead_letters


@dataclass(slots=True)
class Pruning:
    purchase_orders: int = 0
    containers: int = 0
    receipts: int = 0
    failures: int = 0
    dead_letters: int = 0
    files: int = 0

    @property
    def total(self) -> int:
        return sum(asdict(self).values())


@dataclass(slots=True)
class PushReport:
    channel: str
    pending: int = 0  # SKUs looked at
    unchanged: int = 0  # rows equal to what the channel accepted last (or none to send)
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    gave_up: int = 0
    batches: int = 0
    rows: list[tuple[str, dict]] = field(default_factory=list)  # only for previews


class ChannelSyncService:
    def __init__(self, store: Store, config: ChannelsConfig, *, env=None, max_record_bytes: int = MAX_RECORD_BYTES,
                 intake_attempts: int = 3, retry_pause: float = 0.5) -> None:
        self.store = store
        self.config = config
        self.projection = Projection()
        self.sinks = Sinks(config, env)
        self._lock = asyncio.Lock()  # taking in, and making a push's rows
        self._push_locks: dict[str, asyncio.Lock] = {}
        self._stale = False  # the projection may be ahead of the database: reload first
        self.max_record_bytes = max_record_bytes
        # A batch whose intake fails this often (the database answering) is taken one record
        # at a time, and a record that fails this often alone is dead-lettered.
        self.intake_attempts = intake_attempts
        self.retry_pause = retry_pause

    async def start(self, *, with_sinks: bool = True, claim: bool | None = None) -> ChannelSyncService:
        """Migrate, claim the state (`claim`, by default when there are sinks: whoever
        pushes writes), load the projection, and (with `with_sinks`, to push) take the
        channel configuration into account: see `Store.sync_channels`. Without sinks nothing
        is written, so a preview changes nothing."""
        await self.store.create_schema()
        if with_sinks if claim is None else claim:
            await self.store.claim()
        projection = Projection()  # loaded aside: a start tried again never loads twice
        await self.store.load(projection)
        self.projection, self._stale = projection, False
        if with_sinks:
            await self.store.sync_channels(self.channel_states(), self.projection.skus())
            await self.sinks.start()
        return self

    def channel_states(self) -> dict[str, tuple[str, str]]:
        return {name: (c.destination(), c.fingerprint()) for name, c in self.config.enabled().items()}

    async def close(self) -> None:
        await self.sinks.close()

    # -- taking in ------------------------------------------------------------------------------

    async def take_in(self, records: Iterable[Record]) -> TakenIn:
        """Apply records (in order) and commit what they changed in one transaction."""
        async with self._lock:
            if self._stale:
                await self._reload()
            stored = await self.store.positions()
            try:
                return await self._take_in(records, stored)
            except BaseException:
                self._stale = True  # the projection may be ahead of what was committed
                await self._reload_quietly()
                raise

    async def _take_in(self, records: Iterable[Record], stored: dict[str, int]) -> TakenIn:
        tally = TakenIn()
        touched: set[str] = set()
        every = False
        sources: dict[str, int] = {}
        dead: list[dict] = []
        now = self.store.clock()
        for record in records:
            tally.records += 1
            last = stored.get(record.source)
            if last is not None and record.position <= last:
                tally.skipped += 1
                continue
            sources[record.source] = record.position
            event = read_record(record.raw, self.max_record_bytes)
            if event is None:
                continue
            if isinstance(event, Refused):
                dead.append(consumer_store.dead_letter_row(record.source, record.position, record.raw, event, now))
                continue
            tally.applied += 1
            changed = self.projection.apply(event)
            if changed is EVERY_SKU:
                every = True
            else:
                touched |= changed
        if not sources:
            return tally
        if every:
            touched |= set(self.projection.skus())
        pending = {name: touched for name in self.config.enabled()} if touched else {}
        await self.store.commit_consumed(self.projection, self.projection.take_changes(), pending, sources, dead)
        for row in dead:
            log.warning("dead_letter", source=row["source"], position=row["position"], event_id=row["event_id"],
                        event_type=row["event_type"], reason=row["reason"])
        tally.dead_letters = len(dead)
        return tally

    async def take_in_records(self, records: Sequence[Record]) -> TakenIn:
        """Take in consumed records (in consumption order) so that no failure loses one: the
        batch is one transaction, tried again while the database is away; when it fails
        `intake_attempts` times for any other reason (a bug, an input nothing foresaw), its
        records are taken one at a time, and one that still fails that often is
        dead-lettered with the traceback, its position passed, while the others go on
        (`recalculator/consumer_intake.py`). `FencedOut` is raised at once: this process
        must stop writing."""
        intake = Intake(self.store, self.store.clock, SCREEN.identity_of, log, self.intake_attempts,
                        self.retry_pause, fatal=(FencedOut,))
        return await intake.records(list(records), self.take_in, TakenIn, lambda: TakenIn(records=1, dead_letters=1))

    async def consume(
        self, source: str, records: Iterable[tuple[int, bytes | str]], *, batch_size: int = 1000
    ) -> TakenIn:
        """`(position, raw)` records of one source, in batches."""
        tally = TakenIn()
        batch: list[Record] = []
        for position, raw in records:
            batch.append(Record(source, position, raw))
            if len(batch) >= batch_size:
                tally.add(await self.take_in(batch))
                batch = []
        if batch:
            tally.add(await self.take_in(batch))
        return tally

    async def _reload(self) -> None:
        """The projection as committed (loaded aside, so a failed load leaves it stale, to
        be loaded again before it is used, never half-loaded)."""
        projection = Projection()
        await self.store.load(projection)
        self.projection, self._stale = projection, False

    async def _reload_quietly(self) -> None:
        try:
            await self._reload()
        except Exception as error:  # noqa: BLE001 - the database is away: loaded before next use
            log.warning("reload_deferred", error=first_line(error, 500))

    # -- pushing ------------------------------------------------------------------------------

    async def push(self, name: str, *, full: bool = False) -> PushReport:
        """Send `name` the rows of its pending SKUs that differ from what it accepted. With
        `full`, every SKU is looked at (after a change on the channel's side).

        The rows are made under the lock shared with `take_in`; the sending (which can
        take minutes while a channel is down and retried) is not, so records go on being
        taken in meanwhile: a SKU touched during the send has its pending version raised
        and stays pending for the next push. Pushes of one channel are serialised."""
        channel = self.config.channels[name]
        async with self._push_locks.setdefault(name, asyncio.Lock()):
            async with self._lock:
                if self._stale:
                    await self._reload()
                await self.store.check_owner()  # a process that lost the state sends nothing
                if full:
                    await self.store.mark_pending(name, self.projection.skus())
                versions = await self.store.pending(name)
                report = PushReport(name, pending=len(versions))
                if not versions:
                    return report
                desired = feeds.rows(self.projection, channel.options(), versions)
                accepted = await self.store.accepted(name, versions)
                refused = {} if full else await self.store.refused_rows(name, versions)
                send = feeds.changed_rows(desired, accepted, refused)
                unchanged = {sku: version for sku, version in versions.items() if sku not in send}
                await self.store.clear_pending(name, unchanged)
                report.unchanged = len(unchanged)
            return await self._send(name, channel, send, versions, report)

    async def _send(self, name, channel, send: dict[str, dict], versions: dict[str, int], report: PushReport):
        sink = self.sinks[name]
        number = await self.store.batches(name)
        items = list(send.items())
        for start in range(0, len(items), channel.batch_size):
            chunk = items[start:start + channel.batch_size]
            number += 1
            outcomes = await sink.send(Batch(name, number, chunk))
            await self.store.record_answers(name, number, dict(chunk), outcomes, versions)
            report.batches += 1
            report.sent += len(outcomes)
            for outcome in outcomes:
                if outcome.kind == ACCEPTED:
                    report.accepted += 1
                elif outcome.kind == REJECTED:
                    report.rejected += 1
                else:
                    report.gave_up += 1
            if any(outcome.kind == GAVE_UP for outcome in outcomes):
                break  # the channel is unwell: the rest waits for the next push
        return report

    # -- retention -----------------------------------------------------------------------------

    async def prune(self, *, files: bool = True) -> Pruning:
        """Delete what the `[retention]` windows no longer keep, in small transactions:
        closed purchase orders and containers and old receipts (business time: the latest
        time taken in, never later than the wall clock), resolved or superseded failures
        and dead letters (wall clock), and with `files` the feed files of file sinks."""
        settings = self.config.retention
        now = self.store.clock()
        report = Pruning()
        async with self._lock:
            if self._stale:
                await self._reload()
            clock = self.projection.clock
            if clock is not None:
                wall = datetime.fromtimestamp(now, UTC)
                cutoff = min(clock, wall) - timedelta(days=settings.closed_supply_days)
                if self.projection.horizon is None or cutoff > self.projection.horizon:
                    try:
                        pruned = self.projection.prune(cutoff)
                        receipts = await self.store.prune_projection(pruned, self.projection.horizon)
                    except BaseException:
                        self._stale = True  # memory and database may differ: reloaded before use
                        raise
                    self.projection.forget_receipts(receipts)
                    report.purchase_orders, report.containers = len(pruned.purchase_orders), len(pruned.containers)
                    report.receipts = len(set(receipts) | set(pruned.receipts))
        records = await self.store.prune_records(failures_before=now - settings.failure_days * 86_400,
                                                 dead_letters_before=now - settings.dead_letter_days * 86_400)
        report.failures, report.dead_letters = records.failures, records.dead_letters
        if files:
            report.files = self._prune_files(now - settings.feed_file_days * 86_400)
        if report.total:
            log.info("pruned", **{k: v for k, v in asdict(report).items() if v})
        return report

    def _prune_files(self, before: float) -> int:
        """The batch files file sinks wrote before `before` (mtime)."""
        removed = 0
        for name, channel in self.config.enabled().items():
            folder = self.config.feeds_dir / name if self.config.feeds_dir else None
            if channel.sink != "file" or folder is None or not folder.is_dir():
                continue
            for path in folder.iterdir():
                if path.suffix in (".json", ".csv", ".jsonl") and path.stem.isdigit():
                    try:
                        if path.stat().st_mtime < before:
                            path.unlink()
                            removed += 1
                    except FileNotFoundError:
                        pass
        return removed

    async def push_all(self) -> dict[str, PushReport]:
        return {name: await self.push(name) for name in self.config.enabled()}

    async def preview(self, name: str, *, full: bool = False) -> PushReport:
        """What the next push would send to `name`, sending nothing and changing nothing."""
        channel = self.config.channels[name]
        stored = (await self.store.channel_states()).get(name)
        current = self.channel_states()[name]
        # What start() would do before a push: all SKUs when the configuration changed,
        # nothing accepted yet at a new destination.
        if full or stored != current:
            skus = self.projection.skus()
        else:
            skus = list(await self.store.pending(name))
        accepted = {} if stored is None or stored[0] != current[0] else await self.store.accepted(name, skus)
        refused = {} if full or stored is None or stored[0] != current[0] else await self.store.refused_rows(name, skus)
        desired = feeds.rows(self.projection, channel.options(), skus)
        send = feeds.changed_rows(desired, accepted, refused)
        report = PushReport(name, pending=len(skus), unchanged=len(skus) - len(send))
        report.rows = list(send.items())
        return report

