"""Retention (docs/behaviour.md, Retention), for the roles that deduplicate their inputs and
evict closed orders: `Engine` and the router's `RoutingEngine` (a SKU shard keeps neither:
the router decides for it). Both windows are measured on the business clock (the newest
applied input event time), so a replay of the same log forgets and evicts at the same events:
- ids of applied events are remembered for `dedupe_window`, in a heap by the time they
  were applied: O(log n) per id to remember and to forget;
- closed orders wait in a heap by closing time: an order is evicted once it has been closed
  for longer than `closed_order_retention` and none of its lines may still publish a
  backorder, O(log n + lines) per order.

A mixin over `base.EngineBase`, whose state and methods it uses.
"""

from __future__ import annotations

import heapq
from datetime import timedelta

from .model import from_us
from .results import DUPLICATE, REJECTED, Outcome


class Retention:
    def _init_retention(self, dedupe_window: timedelta | None,
                        closed_order_retention: timedelta | None) -> None:
        # In business time; None: kept for ever.
        self.dedupe_window = _micros(dedupe_window)
        self.closed_order_retention = _micros(closed_order_retention)
        # (source, id) of every applied event still remembered → the business time it was
        # applied at; the same in `_remembered`, a heap, for forgetting the oldest first.
        self.processed: dict[tuple[str, str], int] = {}
        self._remembered: list[tuple[int, tuple[str, str]]] = []
        self._legacy_ids = 0  # ids stored before sources were (source ""): match any source
        # Closed orders: (closed at, order id) in a heap (those closed for longer than the
        # retention that still owe are in `expired`).
        self.closing: list[tuple[int, str]] = []

    # -- the dedupe window -------------------------------------------------------------------

    def _refuse(self, event, key: tuple[str, str], now: int) -> Outcome | None:
        """An event is a duplicate when an event with the same `source` and `id` (its
        CloudEvents identity) was applied within the dedupe window; an event older than that
        window (by its `time`, against the clock) is refused, since a redelivery that old
        could no longer be recognised."""
        duplicate = self._duplicate(event, key)
        if duplicate is not None:
            return duplicate
        window = self.dedupe_window
        if window is not None and self.clock is not None and now < self.clock - window:
            return Outcome(REJECTED, (
                f"event time {from_us(now).isoformat()} is more than the dedupe window "
                f"({_duration(window)}) before the newest applied input event "
                f"({from_us(self.clock).isoformat()}): a redelivery that old can no longer "
                "be recognised"
            ))
        return None

    def _duplicate(self, event, key: tuple[str, str]) -> Outcome | None:
        processed = self.processed
        if key in processed or (self._legacy_ids and ("", event.id) in processed):
            return Outcome(
                DUPLICATE, f"event id {event.id!r} from {event.source!r} was already processed"
            )
        return None

    def _record(self, key: tuple[str, str], now: int, clock: int | None) -> None:
        # Remembered from the clock, or from its own time when that is newer (a command).
        applied_at = now if clock is None or now > clock else clock
        self.processed[key] = applied_at
        if self.dedupe_window is not None:  # without a window nothing is forgotten
            heapq.heappush(self._remembered, (applied_at, key))
        self.changes.processed.append((key, applied_at))

    def remember(self, source: str, event_id: str, applied_at: int) -> None:
        """A stored processed id (when loading state)."""
        key = (source, event_id)
        self.processed[key] = applied_at
        if self.dedupe_window is not None:
            heapq.heappush(self._remembered, (applied_at, key))
        if not source:
            self._legacy_ids += 1

    def _retain(self, clock: int, outcome: Outcome) -> None:
        window = self.dedupe_window
        if window is not None and self._remembered and self._remembered[0][0] < clock - window:
            self._forget(clock - window)
        retention = self.closed_order_retention
        if retention is not None and (
            self._ready or (self.closing and self.closing[0][0] < clock - retention)
        ):
            outcome.evicted = self._evict_closed(clock - retention)

    def _forget(self, before: int) -> None:
        """Forget the ids applied before business time `before` (the dedupe window)."""
        remembered = self._remembered
        if not remembered or remembered[0][0] >= before:
            return
        processed = self.processed
        while remembered and remembered[0][0] < before:
            applied_at, key = heapq.heappop(remembered)
            if processed.get(key) == applied_at:
                del processed[key]
                if not key[0]:
                    self._legacy_ids -= 1
        self.changes.forget_before = before

    # -- closed orders --------------------------------------------------------------------------

    def _queue_closed(self, order_id: str, closed_at: int) -> None:
        if self.closed_order_retention is not None:
            heapq.heappush(self.closing, (closed_at, order_id))

    def _evict_closed(self, before: int) -> list[str]:
        """Evict the orders closed before business time `before` that owe nothing; returns
        their ids, in order. Those that still owe wait in `expired` until their last owing
        line is settled (at the latest by the periodic recalculation)."""
        closing, orders, ready = self.closing, self.orders, self._ready
        while closing and closing[0][0] < before:
            closed_at, order_id = heapq.heappop(closing)
            order = orders.get(order_id)
            if order is not None and order.closed_at == closed_at:
                self.expired.add(order_id)
                ready.add(order_id)
        if not ready:
            return []
        evicted = []
        for order_id in sorted(ready):
            order = orders.get(order_id)
            if order is not None and order_id in self.expired and not order.owing:
                self._evict(order)
                evicted.append(order_id)
        ready.clear()
        return evicted

    def index_closed(self) -> None:
        """After loading state: queue the closed orders by closing time again."""
        if self.closed_order_retention is None:
            return
        self.closing = [
            (order.closed_at, order_id)
            for order_id, order in self.orders.items() if order.closed_at is not None
        ]
        heapq.heapify(self.closing)
        self.expired = set()


def _micros(window: timedelta | None) -> int | None:
    if window is None:
        return None
    if window <= timedelta(0):
        raise ValueError(f"a retention window must be positive, not {window}")
    return window // timedelta(microseconds=1)


def _duration(micros: int) -> str:
    """A window as people say it: "30 days", "36 hours", "90 seconds"."""
    for unit, size in (("day", 86_400_000_000), ("hour", 3_600_000_000), ("minute", 60_000_000),
                       ("second", 1_000_000)):
        if micros % size == 0:
            count = micros // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{micros} µs"
