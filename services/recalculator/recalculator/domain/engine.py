"""The allocation engine: applies one validated input event at a time to the recalculator's
state and says what was published. Pure: no I/O, no clock, no randomness; time and ids come
from the events.

Three roles share its state and its handling of events (`base.EngineBase`):
- `Engine`, the one-process engine (the default everywhere): allocates, publishes each
  order's change, deduplicates its inputs and evicts closed orders (`retention.py`), and
  holds manual actions waiting for their orders (`waiting.py`);
- `RoutingEngine`, the sharded recalculator's router's copy (docs/sharding.md): validates
  and keeps orders, lines and reference data exactly as `Engine`, deduplicates and evicts
  for every stage, but places no line in a pool and recalculates nothing;
- `ShardEngine` (`shard_engine.py`), a SKU shard: allocates like `Engine`
  (`recalculation.py`) for only the lines of its SKUs, reports its part of every order it
  touched, and keeps no window of its own.

Costs per event (plain mode, n open lines in a touched pool, k lines whose allocation or
published value changes, d lines changed since the SKU was last recalculated):
- OrderCreated / ItemAdded / ItemReplaced / OrderSplit: O(lines × log n) to place the lines,
  plus a recalculation of their SKUs;
- POReceived / InventoryAdjusted: O(1) per pool, plus a recalculation when the rules ask;
- OrderStatusChanged: O(lines × log n) when eligibility, pool or priority changed;
- recalculating a SKU: settle its pools O(log n + k), then look at the d changed lines;
- with consider_replacement_sku_qty, a recalculated SKU that has a replacement also looks at
  every short line of the SKUs sharing that replacement: O(s log s) for s short lines;
- fully-shippable mode: a recalculated pool that changed is recomputed in O(n);
- SettingsChanged (allocation settings) and WarehouseUpserted (type changed) rebuild every
  pool: O(N log N) over all open lines. They are rare operator actions.

"""

from __future__ import annotations

from datetime import timedelta

from backorder_events import BackorderSettings

from .base import COMMAND_TYPES, MANUAL_TYPES, EngineBase, EventScope
from .changes import Changes
from .model import NONE, Order, backorder_status
from .recalculation import AllocatingEngine
from .results import APPLIED, LineChange, OrderBackorderChange, Outcome, Rejected
from .retention import Retention
from .waiting import WaitingActions


class Engine(WaitingActions, Retention, AllocatingEngine):
    """The one-process engine. `handle(event, ref)` applies an input; with `action_wait`, a
    manual action refused only because orders it names are not known is held instead
    (outcome HELD), with `ref`, the caller's opaque reference to it, given back when it is
    settled: in the `settled` of the outcome of a later event, applied once an OrderCreated
    or OrderSplit created the last order it waits for, or refused once it waited
    `action_wait` (or when it fails for another reason)."""

    def __init__(
        self,
        settings: BackorderSettings | None = None,
        *,
        incremental: bool = True,
        dedupe_window: timedelta | None = None,
        closed_order_retention: timedelta | None = None,
        action_wait: timedelta | None = None,
    ) -> None:
        super().__init__(settings, incremental=incremental)
        self._init_retention(dedupe_window, closed_order_retention)
        self._init_waiting(action_wait)

    def _order_changes(self, scope: EventScope, event_type: str,
                event_id: str) -> list[OrderBackorderChange]:
        """Every order the event touched whose published status or lines changed."""
        changes = []
        held = self.held_orders
        reason = reason_of(event_type)
        dates = self.settings.publish_expected_date_changes
        for order_id in sorted(scope.orders_before):
            order = self.orders[order_id]
            if held and order_id in held:
                previous_status, before = held.pop(order_id)
                self.changes.held = True
            else:
                previous_status, before = scope.orders_before[order_id]
            status = backorder_status(order)
            changed = status != previous_status
            lines = []
            for line_id, line in order.lines.items():
                previous = before.get(line_id, 0)
                changed = changed or previous != line.published
                date = self.expected_date(line)
                if dates and date != line.published_date:
                    changed = True
                lines.append(LineChange(
                    line_id, line.sku, line.qty, line.published, previous, date,
                    line.published_date,
                ))
            if not changed:
                # A line that left the order with a backorder still counts as a change.
                changed = any(v and lid not in order.lines for lid, v in before.items())
            if changed:
                for change, line in zip(lines, order.lines.values(), strict=True):
                    line.published_date = change.expected_date
                order.published_status = status
                changes.append(
                    OrderBackorderChange(
                        order_id, order.company_id, status, previous_status, reason,
                        event_id, tuple(lines),
                    )
                )
        return changes


class RoutingEngine(Retention, EngineBase):
    """The router's copy (docs/sharding.md): it validates and keeps orders, lines and
    reference data exactly as `Engine`, and decides duplicates and evictions for every
    stage, but places no line in a pool and recalculates nothing. It holds no manual action:
    one naming an order not known yet is refused at once (docs/sharding.md, "Known
    differences")."""

    def __init__(
        self,
        settings: BackorderSettings | None = None,
        *,
        dedupe_window: timedelta | None = None,
        closed_order_retention: timedelta | None = None,
    ) -> None:
        super().__init__(settings)
        self._init_retention(dedupe_window, closed_order_retention)

    def give_away(self, order_id: str) -> Order:
        """Forget an order another router takes over (a split-off order whose id another
        route task owns, docs/sharding.md); returns it, to be given to `take_in` there."""
        order = self.orders.pop(order_id)
        for line in order.lines.values():
            self.lines_by_sku[line.sku].discard(line)
            if line.owing:
                owing = self.owing[line.sku]
                owing.discard(line)
                if not owing:
                    del self.owing[line.sku]
        self.expired.discard(order_id)
        self._ready.discard(order_id)
        self.changes.orders.add(order_id)
        return order

    def take_in(self, order: Order) -> None:
        """Keep an order another router gave away."""
        if order.order_id in self.orders:
            raise Rejected(f"order {order.order_id!r} already exists")
        self.orders[order.order_id] = order
        for line in order.lines.values():
            self.lines_by_sku[line.sku].add(line)
            if line.owing:
                self.owing.setdefault(line.sku, set()).add(line)
        if order.closed_at is not None:
            self._queue_closed(order.order_id, order.closed_at)
        self.changes.orders.add(order.order_id)

    def _outcome(self, scope: EventScope, event_type: str, event_id: str, now: int) -> Outcome:
        if self.settings.enable_backorder_workflow and scope.recalc:
            # What a recalculation would do to lines of closed orders: take them to 0.
            if self.owing:
                self._settle_closed(self._recalculation_set(scope.recalc))
        return Outcome(APPLIED)


def reason_of(event_type: str) -> str:
    """The reason of what an event publishes for orders."""
    return "manual" if event_type in MANUAL_TYPES else "recalculation"


__all__ = [
    "COMMAND_TYPES", "MANUAL_TYPES", "NONE", "Changes", "Engine", "RoutingEngine", "reason_of",
]
