"""Manual actions waiting for their orders (docs/behaviour.md, "Manual actions waiting for
their orders"), held by the one-process `Engine` only: an action naming an order not known
yet waits for it for at most `action_wait` of business time. The actions are indexed by the
orders they wait for, so an OrderCreated or OrderSplit looks only at the actions waiting
for the order it created, and kept in a heap by their time, so that letting them go costs
O(log n) each.

A mixin over `base.EngineBase` and `retention.Retention`, whose state and methods it uses.
"""

from __future__ import annotations

import heapq
from datetime import timedelta

from .base import MANUAL_TYPES
from .model import to_us
from .results import APPLIED, DUPLICATE, HELD, REJECTED, Outcome, Settled

# The events that create an order, and so may release manual actions waiting for it.
CREATING_TYPES = frozenset({"OrderCreated", "OrderSplit"})


class Waiting:
    """A manual action held until the orders it names are known (`Engine.waiting`)."""

    __slots__ = ("event", "key", "missing", "ref", "seq", "time")

    def __init__(self, seq: int, key: tuple[str, str], event, ref, time: int,
                 missing: dict[str, None]) -> None:
        self.seq = seq  # the order in which actions were held: the order they are tried in
        self.key = key  # (source, id)
        self.event = event
        self.ref = ref  # the caller's, opaque: given back when the action is settled
        self.time = time  # its own time, µs
        self.missing = missing  # the named orders not known when it was last tried, in order


class WaitingActions:
    def _init_waiting(self, action_wait: timedelta | None) -> None:
        # How long a manual action naming an order not known yet waits for it, in business
        # time (None or 0: it is refused at once).
        self.action_wait = _wait_micros(action_wait)
        # Manual actions waiting for orders not known yet: by (source, id), in the order they
        # were held; by the orders they wait for (order id → {hold sequence: action}); and
        # (time, sequence, key) in a heap, to let them go once they waited `action_wait`.
        self.waiting: dict[tuple[str, str], Waiting] = {}
        self._waiting_for: dict[str, dict[int, Waiting]] = {}
        self._waits: list[tuple[int, int, tuple[str, str]]] = []
        self._wait_seq = 0

    def _duplicate(self, event, key: tuple[str, str]) -> Outcome | None:
        """An event is also a duplicate while an event with its identity is waiting."""
        duplicate = super()._duplicate(event, key)
        if duplicate is None and key in self.waiting:
            return Outcome(DUPLICATE, (
                f"event id {event.id!r} from {event.source!r} is already waiting for "
                "the orders it names"
            ))
        return duplicate

    def _apply_event(self, event, key: tuple[str, str], now: int, handler, ref) -> Outcome:
        if self.action_wait is not None and event.type in MANUAL_TYPES:
            outcome = self._run(
                event.id, event.type, handler, event.data, now, key,
                lambda: self._wait(event, key, now, ref),
            )
        else:
            outcome = self._run(event.id, event.type, handler, event.data, now, key)
        if self.waiting:
            self._settle_waiting(event, outcome)
        return outcome

    def _wait(self, event, key: tuple[str, str], now: int, ref) -> Outcome:
        """Hold a manual action refused only because orders it names are unknown."""
        missing = self._missing(event.type, event.data)
        wait = self.action_wait
        if self.clock is not None and now < self.clock - wait:
            return Outcome(REJECTED, (
                f"{_unknown(missing)} (the action is more than {_iso_duration(wait)} older than "
                f"the newest applied input event: it can wait no longer for {_them(missing)})"
            ))
        waiting = Waiting(self._wait_seq, key, event, ref, now, missing)
        self._wait_seq += 1
        self.waiting[key] = waiting
        self._index_waiting(waiting)
        heapq.heappush(self._waits, (now, waiting.seq, key))
        self.changes.waiting = True
        return Outcome(HELD, (
            f"{_unknown(missing)}: held until {'it is' if len(missing) == 1 else 'they are'} "
            f"known, for at most {_iso_duration(wait)}"
        ))

    def _missing(self, event_type: str, data) -> dict[str, None]:
        """The orders a manual action names that are not known, in its order (no repeats)."""
        named = (data.order_id,) if event_type == "ReallocateBackorder" else data.order_ids
        orders = self.orders
        return dict.fromkeys(order_id for order_id in named if order_id not in orders)

    def _index_waiting(self, waiting: Waiting) -> None:
        for order_id in waiting.missing:
            waiters = self._waiting_for.get(order_id)
            if waiters is None:
                waiters = self._waiting_for[order_id] = {}
            waiters[waiting.seq] = waiting

    def _unwait(self, waiting: Waiting) -> None:
        del self.waiting[waiting.key]
        waiting_for = self._waiting_for
        for order_id in waiting.missing:
            waiters = waiting_for.get(order_id)
            if waiters is not None:
                waiters.pop(waiting.seq, None)
                if not waiters:
                    del waiting_for[order_id]
        if not self.waiting:
            self._waits.clear()  # only settled actions' entries are left
        self.changes.waiting = True

    def _settle_waiting(self, event, outcome: Outcome) -> None:
        """After each handled event: let go the waiting actions that waited their whole
        bound, then try again those waiting for an order the event created."""
        settled = []
        waits, clock = self._waits, self.clock
        if waits and clock is not None and waits[0][0] < clock - (self.action_wait or 0):
            settled = self._expire(clock - (self.action_wait or 0))
        if outcome.status == APPLIED and event.type in CREATING_TYPES and self._waiting_for:
            data = event.data
            created = data.order_id if event.type == "OrderCreated" else data.new_order_id
            if created in self._waiting_for:
                settled.extend(self._release(created, outcome))
        if settled:
            outcome.settled = settled

    def _expire(self, before: int) -> list[Settled]:
        """Refuse the waiting actions whose time is before business time `before`, oldest
        first (then in the order they were held)."""
        waits, settled = self._waits, []
        wait = self.action_wait or 0
        while waits and waits[0][0] < before:
            _, seq, key = heapq.heappop(waits)
            waiting = self.waiting.get(key)
            if waiting is None or waiting.seq != seq:
                continue  # settled already
            missing = list(waiting.missing)
            self._unwait(waiting)
            reason = f"{_unknown(missing)} (waited {_iso_duration(wait)} for {_them(missing)})"
            settled.append(self._settled(waiting, Outcome(REJECTED, reason)))
        return settled

    def _release(self, order_id: str, trigger: Outcome) -> list[Settled]:
        """`order_id` is known now: the actions waiting for it are tried again, in the order
        they were held, those still waiting for other orders left as they are."""
        waiters = self._waiting_for.pop(order_id)
        settled = []
        for seq in sorted(waiters):
            waiting = waiters[seq]
            del waiting.missing[order_id]
            if waiting.missing:
                continue
            event = waiting.event
            outcome = self._run(
                event.id, event.type, self._handlers[event.type], event.data, waiting.time,
                waiting.key, lambda waiting=waiting: self._wait_again(waiting),
            )
            if outcome.status == HELD:
                continue
            self._unwait(waiting)
            trigger.evicted.extend(outcome.evicted)
            settled.append(self._settled(waiting, outcome))
        return settled

    def _wait_again(self, waiting: Waiting) -> Outcome:
        """A released action still names an unknown order (one evicted since it was held):
        it waits for that one, within the same bound."""
        waiting.missing = self._missing(waiting.event.type, waiting.event.data)
        self._index_waiting(waiting)
        return Outcome(HELD, f"{_unknown(list(waiting.missing))}: still held")

    @staticmethod
    def _settled(waiting: Waiting, outcome: Outcome) -> Settled:
        event = waiting.event
        return Settled(event.id, event.type, event.time, waiting.ref, outcome)

    def restore_waiting(self, event, ref) -> None:
        """A stored waiting action (when loading state, after the orders), in the order
        they were held."""
        key = (event.source, event.id)
        now = to_us(event.time)
        waiting = Waiting(self._wait_seq, key, event, ref, now,
                          self._missing(event.type, event.data))
        self._wait_seq += 1
        self.waiting[key] = waiting
        self._index_waiting(waiting)
        heapq.heappush(self._waits, (now, waiting.seq, key))


def _wait_micros(wait: timedelta | None) -> int | None:
    """`action_wait` in µs; None or 0: actions are not held."""
    if wait is None or wait == timedelta(0):
        return None
    if wait < timedelta(0):
        raise ValueError(f"action_wait must not be negative, not {wait}")
    return wait // timedelta(microseconds=1)


def _iso_duration(micros: int) -> str:
    """A duration in ISO 8601, as the settings take it: PT10M, P1D, PT1M30S."""
    seconds, fraction = divmod(micros, 1_000_000)
    days, seconds = divmod(seconds, 86_400)
    hours, seconds = divmod(seconds, 3_600)
    minutes, seconds = divmod(seconds, 60)
    clock = f"{hours}H" if hours else ""
    clock += f"{minutes}M" if minutes else ""
    if fraction:
        clock += f"{seconds}.{fraction:06d}".rstrip("0") + "S"
    elif seconds:
        clock += f"{seconds}S"
    if not days and not clock:
        return "PT0S"
    return "P" + (f"{days}D" if days else "") + (f"T{clock}" if clock else "")


def _unknown(missing: list[str] | dict[str, None]) -> str:
    names = list(missing)
    if len(names) == 1:
        return f"unknown order {names[0]!r}"
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return f"unknown orders {', '.join(repr(name) for name in names[:5])}{more}"


def _them(missing) -> str:
    return "it" if len(missing) == 1 else "them"
