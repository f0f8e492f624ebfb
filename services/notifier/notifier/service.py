"""The notifier's application service, shared by the embedded runtime, the Kafka worker and
the `backorders notifier` commands: take in consumed records (one transaction per batch),
and deliver the queued notifications.

Delivery of one notification: claim it (`sending`), build the message, hand it to the
profile's channel, and as soon as the server has accepted it commit `sent` — nothing else
happens in between, so the window in which a crash repeats a send is one UPDATE's round
trip. A claim left by a dead process is put back and the message sent again with the same
Message-ID and bytes (docs/notifier.md).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from backorder_events import BackorderChanged, parse_event_obj
from backorders_platform import logs
from backorders_platform.consumer_intake import Intake
from backorders_platform.redaction import redact
from backorders_platform.screening import MAX_RECORD_BYTES, Refused, Screen

from .adapters.store import Claimed, Pruned, Store
from .config import FileProfile, NotifierConfig
from .delivery import Channel, DeliveryError, open_channel
from .domain import expected
from .domain.facts import OrderFacts, resolve
from .domain.intake import (
    IntakeResult,
    IntakeTally,
    Loaded,
    notification_ids,
    orders_named,
    take_in,
)
from .domain.message import Composed, MessageError, MessageTemplate, compose
from .domain.placeholders import ItemLine, MessageFacts
from .domain.projection import ORDER_EVENT_TYPES
from .domain.rules import message_id

log = logs.get("notifier")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


INTAKE_TYPES = frozenset({"BackorderChanged"}) | ORDER_EVENT_TYPES


def _from_contract(obj: dict) -> Any:
    if obj["type"] == "BackorderChanged":
        return BackorderChanged.model_validate(obj)
    return parse_event_obj(obj)


# The notifier reads records with `json` and refuses a lone surrogate only in an identifier
# (in a customer value it is kept, and replaced with U+FFFD in the email).
SCREEN = Screen(types=INTAKE_TYPES, parse=_from_contract, decoder="json", surrogates="ids")


def decode(raw: str | bytes | None, max_bytes: int = MAX_RECORD_BYTES) -> Any | Refused | None:
    """An order event or a BackorderChanged, parsed; None for what is of no interest (other
    event types, or no record at all); `Refused` with the reason for a record that cannot be
    taken in (`recalculator/screening.py`): it is dead-lettered. Whatever the contract's
    parser raises is a refusal, never an error of the intake."""
    return SCREEN.record(raw, max_bytes)


def _by_source(records: Sequence[Consumed]) -> dict[str, list[tuple[int, bytes | str | None]]]:
    sources: dict[str, list[tuple[int, bytes | str | None]]] = {}
    for record in records:
        sources.setdefault(record.source, []).append((record.position, record.raw))
    return sources


@dataclass(frozen=True, slots=True)
class Consumed:
    """One consumed record: where it was read (a source and a position in it) and its bytes."""

    source: str
    position: int
    raw: bytes | str | None


@dataclass(slots=True)
class DeliveryTally:
    sent: dict[str, int] = field(default_factory=dict)  # by profile type: smtp, file
    retried: int = 0
    failed: int = 0

    def add(self, other: DeliveryTally) -> None:
        for kind, count in other.sent.items():
            self.sent[kind] = self.sent.get(kind, 0) + count
        self.retried += other.retried
        self.failed += other.failed

    @property
    def delivered(self) -> int:
        return sum(self.sent.values())


class NotifierService:
    def __init__(
        self,
        store: Store,
        config: NotifierConfig,
        *,
        clock: Callable[[], float] = time.time,
        owner: str | None = None,
        max_record_bytes: int = MAX_RECORD_BYTES,
        intake_attempts: int = 3,
        retry_pause: float = 0.5,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.max_record_bytes = max_record_bytes
        # A batch whose intake fails this often (the database answering) is taken one record
        # at a time, and a record that fails this often alone is dead-lettered.
        self.intake_attempts = intake_attempts
        self.retry_pause = retry_pause
        # Who holds a claim: a process id of this run, so a claim outliving it is recognisable.
        self.owner = owner or uuid.uuid4().hex

    # -- intake ----------------------------------------------------------------------------

    async def take_in(self, sources: dict[str, Iterable[tuple[int, str | bytes | None]]]) -> IntakeTally:
        """Consume raw records, `{source: [(position, raw), ...]}`, each source in order,
        in one transaction with each source's last position and the dead letters of the
        records that cannot be taken in."""
        result = await self.store.intake(sources, decode=partial(decode, max_bytes=self.max_record_bytes),
                                         decide=self._decide, named=_named, now=self.clock())
        if result is None:
            return IntakeTally()
        tally = result.tally
        for dead in result.dead:
            log.warning("dead_letter", source=dead["source"], position=dead["position"],
                        event_id=dead["event_id"], event_type=dead["event_type"], reason=dead["reason"])
        if tally.recorded or tally.duplicates:
            log.info("intake", sources=sorted(sources), recorded=tally.recorded, duplicates=tally.duplicates,
                     unassigned=tally.unassigned, order_events=tally.order_events)
        return tally

    async def take_in_records(self, records: Sequence[Consumed]) -> IntakeTally:
        """Take in consumed records (in consumption order) so that no failure loses one: the
        batch is one transaction, tried again while the database is away; when it fails
        `intake_attempts` times for any other reason (a bug, an input nothing foresaw), its
        records are taken one at a time, and one that still fails that often is
        dead-lettered with the traceback, its position passed, while the others go on
        (`recalculator/consumer_intake.py`)."""
        intake = Intake(self.store, self.clock, SCREEN.identity_of, log, self.intake_attempts, self.retry_pause)
        return await intake.records(records, lambda some: self.take_in(_by_source(some)), IntakeTally,
                                    lambda: IntakeTally(dead_letters=1))

    def _decide(self, events: list[Any], loaded: Loaded, ignored: int) -> IntakeResult:
        return take_in(events, loaded, self.config.assignment, ignored=ignored)

    # -- delivery ----------------------------------------------------------------------------

    async def deliver_due(self, limit: int = 100) -> DeliveryTally:
        """One round: claim what is due and deliver it, one channel per profile."""
        tally = DeliveryTally()
        claimed = await self.store.claim_due(self.owner, self.clock(), limit)
        if not claimed:
            return tally
        round_ = _Round(await self.store.facts({n.order_id for n in claimed}))
        try:
            for notification in claimed:
                await self._deliver(notification, round_, tally)
        finally:
            for channel in round_.channels.values():
                await channel.close()
            if round_.written:
                await self.store.mark_sent_many(round_.written, self.owner, self.clock())
        return tally

    # -- retention -----------------------------------------------------------------------------

    async def prune(self) -> Pruned:
        """Delete what the windows of the configuration no longer keep (`Store.prune`), in
        small transactions: sent and suppressed notifications and closed orders older than
        `retention_days` in business time (never less than the longest cool-down), dead
        letters older than `dead_letter_retention_days`. Nothing pending, queued, sending or
        failed is ever pruned."""
        settings = self.config.settings
        now = self.clock()
        pruned = await self.store.prune(
            now=now, keep_us=int(settings.retention_days * 86_400_000_000),
            cooldown_us=int(self.config.longest_cooldown_minutes() * 60_000_000),
            dead_letters_before=now - settings.dead_letter_retention_days * 86_400)
        if pruned.total:
            log.info("pruned", notifications=pruned.notifications, orders=pruned.orders,
                     dead_letters=pruned.dead_letters, cutoff_us=pruned.cutoff_us)
        return pruned

    async def requeue_expired_claims(self) -> int:
        """Put back the claims older than `sending_lease_seconds` (their process died, or
        lost its connection to the database for longer than that)."""
        lease = self.config.settings.sending_lease_seconds
        requeued = await self.store.requeue_claimed(older_than=lease)
        if requeued:
            log.warning("claims_requeued", count=requeued, lease_seconds=lease)
        return requeued

    async def deliver_all(self, *, wait_for_retries: float = 0.0, limit: int = 100) -> DeliveryTally:
        """Deliver until nothing is due; retries falling due within `wait_for_retries`
        seconds from now are waited for, later ones stay queued for the next run."""
        tally = DeliveryTally()
        horizon = self.clock() + wait_for_retries
        while True:
            round_ = await self.deliver_due(limit)
            tally.add(round_)
            if round_.delivered or round_.failed or round_.retried:
                continue
            due = await self.store.next_due()
            if due is None or due > horizon:
                return tally
            await asyncio.sleep(max(0.0, min(due - self.clock(), 1.0)))

    async def _deliver(self, n: Claimed, round_: _Round, tally: DeliveryTally) -> None:
        attempts = n.attempts + 1
        template = self.config.templates.get(n.template)
        if template is None:
            return await self._fail(n, attempts, f"template {n.template!r} is not defined in the configuration", tally)
        if template.profile is None:
            return await self._fail(n, attempts, f"template {n.template!r} has no SMTP profile", tally)
        profile = self.config.profiles.get(template.profile)
        if profile is None:
            return await self._fail(
                n, attempts, f"template {n.template!r} names SMTP profile {template.profile!r}, which is not defined",
                tally)
        try:
            message = build_message(self.config, template, n.notification_id, n.order_id, n.company_id,
                                    n.change, n.event_time, round_.facts)
        except MessageError as error:
            return await self._fail(n, attempts, str(error), tally)
        except Exception as error:  # noqa: BLE001 - one bad message must not stop the others
            return await self._fail(n, attempts, f"message cannot be built: {type(error).__name__}: {error}", tally)
        if template.profile in round_.down:
            # The server did not answer for the previous message: not tried now, not counted.
            await self.store.release(n.notification_id, self.owner, at=round_.down[template.profile],
                                     now=self.clock())
            tally.retried += 1
            return None
        channel = round_.channels.get(template.profile)
        if channel is None:
            channel = round_.channels[template.profile] = open_channel(profile)
        try:
            accepted = await channel.send(message)
        except DeliveryError as error:
            if error.transient and attempts < profile.max_attempts:
                delay = profile.delay(attempts)
                at = self.clock() + delay
                if error.unreachable:
                    round_.down[template.profile] = at
                reason = redact(error.reason)
                await self.store.mark_retry(n.notification_id, self.owner, attempts=attempts,
                                            at=at, error=reason, now=self.clock())
                tally.retried += 1
                log.warning("delivery_retry", notification_id=n.notification_id, order_id=n.order_id,
                            attempt=attempts, retry_in=delay, reason=reason)
                return None
            reason = error.reason if not error.transient else f"gave up after {attempts} attempts: {error.reason}"
            return await self._fail(n, attempts, reason, tally, message)
        note = redact(accepted.note) or None
        if isinstance(profile, FileProfile):
            # Writing the file again gives the same file: these are recorded together at
            # the end of the round.
            round_.written.append((n.notification_id, attempts, message.message_id, message.to, note))
            kind = "file"
        else:
            # The server has the message: record it before anything else happens.
            kept = await self.store.mark_sent(n.notification_id, self.owner, attempts=attempts,
                                              message_id=message.message_id, recipient=message.to,
                                              note=note, now=self.clock())
            if not kept:
                log.warning("claim_lost", notification_id=n.notification_id, order_id=n.order_id)
            kind = "smtp"
        tally.sent[kind] = tally.sent.get(kind, 0) + 1
        log.info("notification_sent", notification_id=n.notification_id, order_id=n.order_id,
                 message_id=message.message_id, profile=template.profile, attempts=attempts)
        return None

    async def _fail(self, n: Claimed, attempts: int, reason: str, tally: DeliveryTally,
                    message: Composed | None = None) -> None:
        reason = redact(reason).encode("utf-8", "backslashreplace").decode("utf-8")  # storable, printable
        await self.store.mark_failed(
            n.notification_id, self.owner, attempts=attempts, error=reason, now=self.clock(),
            message_id=message.message_id if message else None, recipient=message.to if message else None,
        )
        tally.failed += 1
        log.warning("notification_failed", notification_id=n.notification_id, order_id=n.order_id,
                    template=n.template, reason=reason)



@dataclass(slots=True)
class _Round:
    """One delivery round: the orders' data, the open channels, the file writes to record,
    the profiles found unreachable."""

    facts: dict[str, OrderFacts]
    channels: dict[str, Channel] = field(default_factory=dict)
    written: list[tuple[str, int, str, str, str | None]] = field(default_factory=list)
    down: dict[str, float] = field(default_factory=dict)  # profile -> when to try it again


def build_message(config: NotifierConfig, template: MessageTemplate, notification: str, order_id: str,
                  company_id: str, change: dict[str, Any], event_time: int,
                  facts: dict[str, OrderFacts]) -> Composed:
    """The message of one notification (also what `backorders notifier preview` shows)."""
    resolved = resolve(order_id, facts)
    if resolved is None:
        raise MessageError(f"the customer data of order {order_id} has not arrived")
    lines = change.get("lines", [])
    items = tuple(
        ItemLine(line["sku"], resolved.line_names.get(line["line_id"]), line["qty"], line["backorder_qty"],
                 expected.day(expected.parse(line.get("expected_date"))))
        for line in lines
    )
    message_facts = MessageFacts(
        order_id=order_id,
        company_name=config.company_name(company_id),
        footer=config.footer(company_id),
        status=change.get("status", ""),
        customer=resolved.customer or {},
        order_date=resolved.order_date,
        items=items,
        expected_day=expected.order_day(lines),
    )
    return compose(
        template, message_facts,
        message_id=message_id(notification, config.message_id_domain(template)),
        date=_EPOCH + timedelta(microseconds=event_time),
    )


def _named(events: list[Any]) -> tuple[set[str], set[str]]:
    return orders_named(events), notification_ids(events)
