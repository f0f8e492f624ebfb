"""What a batch of consumed events does to the notifier's state (pure).

Order events update the projection of orders. A `BackorderChanged` that marks an order as a
backorder records one notification, identified by the change's id, so a redelivered or
replayed change finds it recorded and records nothing. A notification waits as `pending`
while its order's customer data has not arrived (the two topics are not ordered against
each other) and is decided once it has: `queued` for sending, `suppressed` by the cool-down,
or `failed` when the order has no email address. Nothing is dropped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from backorder_events import BackorderChanged

from . import projection
from .expected import order_day
from .facts import OrderFacts, resolve
from .rules import (
    NOTIFYING_STATUSES,
    SCENARIO,
    SCENARIOS,
    SLIP_SCENARIO,
    CoolDown,
    is_marked_backorder,
    is_slip,
    notification_id,
)

PENDING, QUEUED, SENDING, SENT, FAILED, SUPPRESSED = (
    "pending", "queued", "sending", "sent", "failed", "suppressed",
)
STATUSES = (PENDING, QUEUED, SENDING, SENT, FAILED, SUPPRESSED)
# An email went, or is going, for these: the cool-down counts from them.
EMAILED = frozenset({QUEUED, SENDING, SENT})


@dataclass(slots=True)
class Notification:
    notification_id: str
    event_id: str
    order_id: str
    company_id: str
    template: str
    status: str
    event_time: int  # µs, the change's business time
    change: dict[str, Any]
    last_error: str | None = None
    scenario: str = SCENARIO


@dataclass(frozen=True, slots=True)
class Policy:
    """The company's assignment for the scenario, or None when it has none; with the
    template of slip notices when the company sends them."""

    template: str
    cool_down: CoolDown
    slip_template: str | None = None


@dataclass(slots=True)
class Loaded:
    """What the store read for a batch: the order rows it names (with the orders they were
    split from and the ones split from them), which of its notification ids exist, when each
    order was last emailed, and the pending notifications of those orders."""

    facts: dict[str, OrderFacts] = field(default_factory=dict)
    existing: set[str] = field(default_factory=set)
    last_emailed: dict[str, int] = field(default_factory=dict)
    pending: list[Notification] = field(default_factory=list)
    # µs business time before which notifications may have been pruned (None: never)
    horizon: int | None = None


@dataclass(slots=True)
class IntakeTally:
    order_events: int = 0
    changes: int = 0  # BackorderChanged consumed
    transitions: int = 0  # of which marked an order as a backorder
    slips: int = 0  # of which moved a backorder's expected date later (slip notices on)
    duplicates: int = 0  # transitions already recorded
    stale: int = 0  # transitions older than the pruning horizon: not recorded again
    unassigned: int = 0  # transitions of companies with no template assigned
    recorded: int = 0  # notifications recorded
    ignored: int = 0  # of no interest
    dead_letters: int = 0  # records that cannot be taken in (dead-lettered with the reason)

    def add(self, other: IntakeTally) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(slots=True)
class IntakeResult:
    facts: dict[str, OrderFacts]  # rows to write
    new: list[Notification]
    decided: list[Notification]  # pending ones loaded from the store, now decided
    tally: IntakeTally
    dead: list[dict] = field(default_factory=list)  # dead-letter rows the store wrote


def take_in(
    events: Iterable[Any],
    loaded: Loaded,
    policy_of: Callable[[str], Policy | None],
    *,
    ignored: int = 0,
) -> IntakeResult:
    """Apply `events` (parsed order events and `BackorderChanged`, in consumption order)."""
    facts = loaded.facts
    tally = IntakeTally(ignored=ignored)
    touched: set[str] = set()
    new: dict[str, Notification] = {}
    # Per order, the day its undecided backorder notice would email: a later change may be a
    # slip against it before it is decided (at the end of the batch).
    noticed = {n.order_id: order_day(n.change.get("lines", []))
               for n in sorted(loaded.pending, key=lambda n: n.event_time) if n.scenario == SCENARIO}
    for event in events:
        if isinstance(event, BackorderChanged):
            tally.changes += 1
            _change(event, facts, loaded.existing, new, policy_of, tally, touched, loaded.horizon, noticed)
        else:
            tally.order_events += 1
            touched |= projection.apply(facts, event)

    by_order: dict[str, list[Notification]] = defaultdict(list)
    for notification in (*loaded.pending, *new.values()):
        if notification.status == PENDING:
            by_order[notification.order_id].append(notification)
    for order_id, waiting in by_order.items():
        resolved = resolve(order_id, facts)
        if resolved is None:
            continue
        order = facts[order_id]
        last = loaded.last_emailed.get(order_id)
        for notification in sorted(waiting, key=lambda n: (n.event_time, n.notification_id)):
            policy = policy_of(notification.company_id)
            cool_down = policy.cool_down if policy is not None else CoolDown()
            day = order_day(notification.change.get("lines", []))
            if not (resolved.customer or {}).get("email"):
                notification.status = FAILED
                notification.last_error = f"order {order_id} has no customer email address"
            elif notification.scenario == SLIP_SCENARIO and not is_slip(day, order.emailed_day):
                notification.status = SUPPRESSED
                notification.last_error = (f"no slip: expected {day or 'unknown'}, the last email of order "
                                           f"{order_id} gave {order.emailed_day or 'no date'}")
            elif cool_down.suppresses(notification.event_time, last):
                notification.status = SUPPRESSED
                notification.last_error = (
                    f"cool-down: order {order_id} was emailed less than "
                    f"{cool_down.minutes:g} minutes before"
                )
            else:
                notification.status = QUEUED
                last = notification.event_time
                order.emailed_day = day
                touched.add(order_id)
        if last is not None:
            loaded.last_emailed[order_id] = last

    tally.recorded = len(new)
    written = {order_id: facts[order_id] for order_id in touched}
    decided = [n for n in loaded.pending if n.status != PENDING]
    return IntakeResult(written, list(new.values()), decided, tally)


def _change(event: BackorderChanged, facts, existing, new, policy_of, tally, touched, horizon, noticed) -> None:
    data = event.data
    order = facts.get(data.order_id)
    if order is None:
        order = facts[data.order_id] = OrderFacts(data.order_id)
    dumped = event.model_dump(mode="json")  # the whole event: previews use its id and time
    newest = order.last_change is None or _moment(order.last_change) <= event.time  # not an older redelivery
    if newest:
        order.last_change = dumped
        touched.add(data.order_id)
    policy = policy_of(data.company_id)
    if is_marked_backorder(data.previous_status.value, data.status.value):
        tally.transitions += 1
        scenario = SCENARIO
        noticed[data.order_id] = order_day(dumped["data"]["lines"])
    elif newest and policy is not None and policy.slip_template and \
            _may_slip(dumped["data"], (order.emailed_day, noticed.get(data.order_id))):
        tally.slips += 1
        scenario = SLIP_SCENARIO
    else:
        return
    nid = notification_id(event.id, scenario)
    if nid in existing or nid in new:
        tally.duplicates += 1
        return
    if horizon is not None and _us(event.time) < horizon:
        # Its notification may have been pruned (a replay after a rebuild), or the change is
        # older than the retention window: no email for it either way.
        tally.stale += 1
        return
    if policy is None:
        tally.unassigned += 1
        return
    new[nid] = Notification(
        notification_id=nid,
        event_id=event.id,
        order_id=data.order_id,
        company_id=data.company_id,
        template=policy.template if scenario == SCENARIO else policy.slip_template,
        status=PENDING,
        event_time=_us(event.time),
        change=dumped["data"],
        scenario=scenario,
    )


def _may_slip(change: dict[str, Any], emailed: tuple[str | None, ...]) -> bool:
    """Whether a change of an order that stays a backorder may be a slip, decided once the
    order's earlier notifications are: its expected day moved later in this change, or is
    later than a day the order's last email gave or may give (`emailed`: a slip held back
    by the cool-down is told with the order's next change after it)."""
    if change["status"] not in NOTIFYING_STATUSES:
        return False
    lines = change["lines"]
    day = order_day(lines)
    return any(is_slip(day, earlier) for earlier in (order_day(lines, previous=True), *emailed))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _moment(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["time"])


def _us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def orders_named(events: Iterable[Any]) -> set[str]:
    """The order ids a batch reads or writes."""
    named: set[str] = set()
    for event in events:
        if isinstance(event, BackorderChanged):
            named.add(event.data.order_id)
        else:
            named.update(projection.orders_named(event))
    return named


def notification_ids(events: Iterable[Any]) -> set[str]:
    return {notification_id(e.id, scenario) for e in events if isinstance(e, BackorderChanged)
            for scenario in SCENARIOS}
