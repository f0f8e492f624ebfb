"""The allocation engine: applies one validated input event at a time to the recalculator's
state and says what was published. Pure: no I/O, no clock, no randomness; time and ids come
from the events.

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

Retention (docs/behaviour.md, Retention), both measured on the business clock (the newest
applied input event time), so a replay of the same log forgets and evicts at the same events:
- ids of applied events are remembered for `dedupe_window`, in a heap by the time they
  were applied: O(log n) per id to remember and to forget;
- closed orders wait in a heap by closing time: an order is evicted once it has been closed
  for longer than `closed_order_retention` and none of its lines may still publish a
  backorder, O(log n + lines) per order.

Manual actions naming an order not known yet (docs/behaviour.md, "Manual actions waiting for
their orders") wait for it for at most `action_wait` of business time: indexed by the orders
they wait for, so an OrderCreated or OrderSplit looks only at the actions waiting for the
order it created, and in a heap by their time, so that letting them go costs O(log n) each.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import timedelta

from backorder_events import BackorderSettings

from . import policy
from .handlers import EventHandlers
from .model import CLOSED, NONE, Line, Order, backorder_status, from_us, to_us
from .pool import Pool
from .results import (
    APPLIED,
    DUPLICATE,
    HELD,
    REJECTED,
    LineChange,
    OrderBackorderChange,
    OrderPartial,
    Outcome,
    PartialLine,
    ProductBackorderChange,
    Rejected,
    Settled,
    SkuPositionChange,
    UnknownOrder,
)
from .shard_operations import ShardOperations

MANUAL_TYPES = frozenset({"ReallocateBackorder", "MarkBackorder", "MarkNotBackorder"})
# The commands of events.md: stamped by an operator or by the periodic run's scheduler (from
# the wall clock), they do not move the business clock; the input events do.
COMMAND_TYPES = MANUAL_TYPES | {"RecalculateBackorders"}
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


class _EventScope:
    """What one event touched: published values before it began, and SKUs to recalculate."""

    __slots__ = ("evicted", "orders_before", "recalc", "totals_before")

    def __init__(self) -> None:
        # order id → (published status, {line id: published backorder}) before the event
        self.orders_before: dict[str, tuple[str, dict[str, int]]] = {}
        self.totals_before: dict[str, int] = {}
        self.recalc: set[str] = set()
        self.evicted: tuple[OrderPartial, ...] = ()  # a shard's orders evicted by this operation


class Changes:
    """Keys of state rows changed since the last `take_changes()`, for persistence."""

    __slots__ = (
        "clock",
        "forget_before",
        "held",
        "orders",
        "positions",
        "processed",
        "products",
        "settings",
        "skus",
        "stock",
        "waiting",
        "warehouses",
    )

    def __init__(self) -> None:
        self.orders: set[str] = set()
        self.stock: set[tuple[str, str]] = set()
        self.warehouses: set[str] = set()
        self.products: set[str] = set()
        self.skus: set[str] = set()  # SKUs whose published total changed
        self.positions: set[str] = set()  # SKUs whose published position changed
        self.settings = False
        self.held = False  # the values held back while the workflow is disabled changed
        self.waiting = False  # the manual actions waiting for their orders changed
        self.clock = False  # last_time moved
        # ((source, event id), applied at) of the events applied
        self.processed: list[tuple[tuple[str, str], int]] = []
        # ids applied before this business time were forgotten (the dedupe window)
        self.forget_before: int | None = None


class Engine(EventHandlers, ShardOperations):
    def __init__(
        self,
        settings: BackorderSettings | None = None,
        *,
        incremental: bool = True,
        allocating: bool = True,
        partial: bool = False,
        dedupe_window: timedelta | None = None,
        closed_order_retention: timedelta | None = None,
        action_wait: timedelta | None = None,
    ) -> None:
        self.settings = settings or BackorderSettings()
        # Retention, in business time (None: kept for ever). A shard (partial) keeps neither:
        # the router deduplicates and decides evictions for it.
        self.dedupe_window = _micros(dedupe_window)
        self.closed_order_retention = _micros(closed_order_retention)
        # How long a manual action naming an order not known yet waits for it, in business
        # time (None or 0: it is refused at once). The sharded recalculator's router is not
        # given one (docs/sharding.md).
        self.action_wait = _wait_micros(action_wait)
        self.incremental = incremental
        # allocating=False: the router's copy (docs/sharding.md). It validates and keeps
        # orders, lines and reference data exactly as here, but places no line in a pool and
        # recalculates nothing.
        self.allocating = allocating
        # partial=True: a SKU shard. It holds only the lines of its SKUs, so it reports every
        # order it touched with those lines (OrderPartial) and leaves the order-level status,
        # what was published before and the decision to publish to the assembler.
        self.partial = partial
        self.orders: dict[str, Order] = {}
        self.stock: dict[str, dict[str, int]] = {}  # sku → warehouse → physical qty
        self.warehouse_types: dict[str, str] = {}
        self.warehouse_names: dict[str, str | None] = {}
        self.replacements: dict[str, str] = {}  # sku → replacement sku
        self.product_names: dict[str, str | None] = {}
        self.referrers: dict[str, set[str]] = defaultdict(set)  # replacement → skus
        self.lines_by_sku: dict[str, set[Line]] = defaultdict(set)
        self.pools: dict[tuple[str, str | None], Pool] = {}
        self.pools_by_sku: dict[str, dict[str | None, Pool]] = defaultdict(dict)
        self.dirty: dict[str, set[Line]] = defaultdict(set)
        self.totals: dict[str, int] = defaultdict(int)  # sku → total published backorder
        # sku → (available, backorder) last published in a SkuPositionChanged
        self.positions: dict[str, tuple[int, int]] = {}
        # (source, id) of every applied event still remembered → the business time it was
        # applied at; the same in `_remembered`, a heap, for forgetting the oldest first.
        self.processed: dict[tuple[str, str], int] = {}
        self._remembered: list[tuple[int, tuple[str, str]]] = []
        self._legacy_ids = 0  # ids stored before sources were (source ""): match any source
        self.last_time: int | None = None  # time of the last applied event
        # The business clock: the newest time of the applied input events (commands do not
        # move it). None until the first one.
        self.clock: int | None = None
        # Closed orders: (closed at, order id) in a heap; those closed for longer than the
        # retention that still have owing lines; the lines owing, by SKU.
        self.closing: list[tuple[int, str]] = []
        self.expired: set[str] = set()
        self.owing: dict[str, set[Line]] = {}
        self._ready: set[str] = set()  # expired orders that may have become evictable
        # While the workflow is disabled nothing is published, so the values downstream last
        # saw are held here (first snapshot wins) until the order or SKU is published again.
        self.held_orders: dict[str, tuple[str, dict[str, int]]] = {}
        self.held_totals: dict[str, int] = {}
        # Manual actions waiting for orders not known yet: by (source, id), in the order they
        # were held; by the orders they wait for (order id → {hold sequence: action}); and
        # (time, sequence, key) in a heap, to let them go once they waited `action_wait`.
        self.waiting: dict[tuple[str, str], Waiting] = {}
        self._waiting_for: dict[str, dict[int, Waiting]] = {}
        self._waits: list[tuple[int, int, tuple[str, str]]] = []
        self._wait_seq = 0
        self.changes = Changes()
        self._scope: _EventScope | None = None
        self._handoff = None  # what a shard operation hands to another shard
        self._handlers: dict[str, Callable] = {
            "OrderCreated": self._order_created,
            "OrderSplit": self._order_split,
            "ItemAdded": self._item_added,
            "ItemReplaced": self._item_replaced,
            "OrderStatusChanged": self._order_status_changed,
            "POReceived": self._po_received,
            "InventoryAdjusted": self._inventory_adjusted,
            "WarehouseUpserted": self._warehouse_upserted,
            "ProductUpserted": self._product_upserted,
            "SettingsChanged": self._settings_changed,
            "PurchaseOrderUpdated": self._not_for_allocation,
            "ContainerUpdated": self._not_for_allocation,
            "RecalculateBackorders": self._recalculate_backorders,
            "ReallocateBackorder": self._reallocate_backorder,
            "MarkBackorder": self._mark_backorder,
            "MarkNotBackorder": self._mark_not_backorder,
        }

    # -- the one entry point -------------------------------------------------------------

    def handle(self, event, ref=None) -> Outcome:
        """Apply one validated event (a `backorder_events` model). Never raises for bad
        business input: that comes back as a rejected outcome and changes nothing.

        An event is a duplicate when an event with the same `source` and `id` (its
        CloudEvents identity) was applied within the dedupe window, or is waiting; an event
        older than that window (by its `time`, against the clock) is refused, since a
        redelivery that old could no longer be recognised.

        With `action_wait`, a manual action refused only because orders it names are not
        known is held instead (outcome HELD), with `ref`, the caller's opaque reference to
        it, given back when it is settled: in the `settled` of the outcome of a later event,
        applied once an OrderCreated or OrderSplit created the last order it waits for, or
        refused once it waited `action_wait` (or when it fails for another reason)."""
        now = to_us(event.time)
        key = (event.source, event.id)
        if not self.partial:  # a shard's inputs are deduplicated by the router
            processed = self.processed
            if key in processed or (self._legacy_ids and ("", event.id) in processed):
                return Outcome(
                    DUPLICATE, f"event id {event.id!r} from {event.source!r} was already processed"
                )
            if key in self.waiting:
                return Outcome(DUPLICATE, (
                    f"event id {event.id!r} from {event.source!r} is already waiting for "
                    "the orders it names"
                ))
            window = self.dedupe_window
            if window is not None and self.clock is not None and now < self.clock - window:
                return Outcome(REJECTED, (
                    f"event time {from_us(now).isoformat()} is more than the dedupe window "
                    f"({_duration(window)}) before the newest applied input event "
                    f"({from_us(self.clock).isoformat()}): a redelivery that old can no longer "
                    "be recognised"
                ))
        handler = self._handlers.get(event.type)
        if handler is None:
            return Outcome(REJECTED, f"unknown event type {event.type!r}")
        if self.action_wait is not None and event.type in MANUAL_TYPES and not self.partial:
            outcome = self._run(
                event.id, event.type, handler, event.data, now, True, key,
                lambda: self._wait(event, key, now, ref),
            )
        else:
            outcome = self._run(event.id, event.type, handler, event.data, now, True, key)
        if self.waiting:
            self._settle_waiting(event, outcome)
        return outcome

    def _run(
        self, event_id: str, event_type: str, handler, data, now: int, record: bool = True,
        key: tuple[str, str] | None = None, on_unknown: Callable[[], Outcome] | None = None,
    ) -> Outcome:
        scope = self._scope = _EventScope()
        try:
            handler(data, now)  # each handler checks everything before it mutates
        except Rejected as rejected:
            self._scope = None
            self._handoff = None
            if on_unknown is not None and isinstance(rejected, UnknownOrder):
                return on_unknown()
            return Outcome(REJECTED, rejected.reason)
        clock = self.clock
        if event_type not in COMMAND_TYPES and (clock is None or now > clock):
            clock = self.clock = now
        if record and not self.partial:  # a shard's inputs are deduplicated by the router
            # Remembered from the clock, or from its own time when that is newer (a command).
            applied_at = now if clock is None or now > clock else clock
            self.processed[key] = applied_at
            if self.dedupe_window is not None:  # without a window nothing is forgotten
                heapq.heappush(self._remembered, (applied_at, key))
            self.changes.processed.append((key, applied_at))
        self.last_time = now
        self.changes.clock = True
        if not self.allocating:
            if self.settings.enable_backorder_workflow and scope.recalc:
                # What a recalculation would do to lines of closed orders: take them to 0.
                if self.owing:
                    self._settle_closed(self._recalculation_set(scope.recalc))
            outcome = Outcome(APPLIED)
        elif self.settings.enable_backorder_workflow:
            recalculated = self._recalculate(scope.recalc, now) if scope.recalc else set()
            if self.owing and not self.owing.keys().isdisjoint(recalculated):
                self._settle_closed(recalculated)
            if self.partial:
                orders = []
                partials = self._order_partials(scope)
            else:
                reason = "manual" if event_type in MANUAL_TYPES else "recalculation"
                orders = self._order_changes(scope, reason, event_id)
                partials = []
            outcome = Outcome(
                APPLIED,
                None,
                orders,
                self._product_changes(scope),
                self._position_changes(recalculated, scope, now),
                partials,
            )
        else:
            self._hold(scope)
            outcome = Outcome(APPLIED, partials=self._order_partials(scope) if self.partial else [])
        if clock is not None and not self.partial:
            window = self.dedupe_window
            if window is not None and self._remembered and self._remembered[0][0] < clock - window:
                self._forget(clock - window)
            retention = self.closed_order_retention
            if retention is not None and (
                self._ready or (self.closing and self.closing[0][0] < clock - retention)
            ):
                outcome.evicted = self._evict_closed(clock - retention)
        self._scope = None
        outcome.handoff, self._handoff = self._handoff, None
        return outcome

    def apply(self, operation, cause_id: str, now: int) -> Outcome:
        """Apply one of the router's shard operations (`sharding.py`) on behalf of the input
        event `cause_id`: the same outcome as `handle`, plus what a departing line or SKU
        hands over. Operations are not recorded as processed ids: the cause may also reach
        this shard as an event, and the shard runtime deduplicates by routing sequence."""
        handler = getattr(self, "_op_" + type(operation).__name__)
        return self._run(cause_id, operation.cause_type, handler, operation, now, False)

    # -- manual actions waiting for their orders ---------------------------------------------

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
                True, waiting.key, lambda waiting=waiting: self._wait_again(waiting),
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

    # -- state changes --------------------------------------------------------------------------

    def _touch(self, order: Order, *, new: bool = False) -> None:
        """Remember the order's published values as they were before this event."""
        self.changes.orders.add(order.order_id)
        scope = self._scope
        if scope is None or order.order_id in scope.orders_before:
            return
        lines = {} if new else {lid: line.published for lid, line in order.lines.items()}
        scope.orders_before[order.order_id] = (NONE if new else order.published_status, lines)

    def _set_published(self, line: Line, value: int) -> None:
        old = line.published
        if value == old:
            return
        self._touch(line.order)
        sku = line.sku
        scope = self._scope
        if scope is not None and sku not in scope.totals_before:
            scope.totals_before[sku] = self.totals[sku]
        self.totals[sku] += value - old
        self.changes.skus.add(sku)
        line.published = value
        if line.frozen:
            line.pool.adjust_frozen(value - old)
        if value and line.order.closed_at is not None:
            self._mark_owing(line)  # until its SKU's next recalculation takes it to 0

    def _set_manual(self, line: Line, value: int) -> None:
        self._touch(line.order)
        self._set_published(line, value)
        line.manual = True
        if self.allocating:
            self.dirty[line.sku].add(line)  # the next recalculation overwrites it

    def _add_line(self, order, line_id, sku, qty, name, unit_price) -> Line:
        line = Line(order, line_id, sku, qty, name, unit_price)
        order.lines[line_id] = line
        self.lines_by_sku[sku].add(line)
        self._place(line)
        return line

    def _drop_line(self, line: Line) -> None:
        self._unplace(line)
        self._set_published(line, 0)
        self._clear_owing(line)
        self.lines_by_sku[line.sku].discard(line)
        del line.order.lines[line.line_id]
        line.live = False

    def _resize_line(self, line: Line, sku: str, qty: int, published: int | None = None) -> None:
        """Change a line's SKU and/or qty; its published backorder (by default what it had)
        is capped at the new qty and follows the line to its new SKU."""
        self._unplace(line)
        published = min(line.published if published is None else published, qty)
        self._set_published(line, 0)
        owing = line.owing
        if owing and sku != line.sku:
            self._owing_move(line, sku)
        self.lines_by_sku[line.sku].discard(line)
        line.sku = sku
        line.qty = qty
        self.lines_by_sku[sku].add(line)
        self._set_published(line, published)
        self._place(line)

    def _place(self, line: Line) -> None:
        if not self.allocating:
            return
        order = line.order
        calculated, warehouse = policy.pool_warehouse(
            self.settings, self.warehouse_types, order
        )
        self.dirty[line.sku].add(line)
        if not calculated:
            line.pool = None
            line.key = None
            return
        pool = self.pools.get((line.sku, warehouse))
        if pool is None:
            pool = self._new_pool(line.sku, warehouse)
        line.key = policy.priority_key(self.settings, order, line)
        line.pool = pool
        pool.insert(line)

    def _unplace(self, line: Line) -> None:
        if not self.allocating:
            return
        if line.pool is not None:
            line.pool.remove(line)
            line.pool = None
        self.dirty[line.sku].add(line)

    def _replace(self, line: Line) -> None:
        """Re-place a line whose order changed, unless its pool and key stay the same."""
        if not self.allocating:
            return
        calculated, warehouse = policy.pool_warehouse(
            self.settings, self.warehouse_types, line.order
        )
        pool = line.pool
        if calculated and pool is not None and pool.warehouse_id == warehouse:
            if policy.priority_key(self.settings, line.order, line) == line.key:
                return
        self._unplace(line)
        self._place(line)

    def _new_pool(self, sku: str, warehouse: str | None) -> Pool:
        settings = self.settings
        pool = Pool(
            sku,
            warehouse,
            policy.pool_supply(settings, self.warehouse_types, self.stock.get(sku), warehouse),
            self.dirty[sku],
            fully_shippable=settings.prioritize_fully_shippable,
            track_dates=settings.max_days_to_be_back is not None,
        )
        self.pools[(sku, warehouse)] = pool
        self.pools_by_sku[sku][warehouse] = pool
        return pool

    def _change_stock(self, sku: str, warehouse: str, delta: int | None, set_to: int | None):
        by_warehouse = self.stock.setdefault(sku, {})
        if set_to is not None:
            by_warehouse[warehouse] = set_to
        else:
            by_warehouse[warehouse] = by_warehouse.get(warehouse, 0) + delta
        self.changes.stock.add((sku, warehouse))
        settings = self.settings
        target = warehouse if settings.warehouse_based else None
        pool = self.pools.get((sku, target))
        if pool is not None:
            pool.set_supply(
                policy.pool_supply(settings, self.warehouse_types, by_warehouse, target)
            )

    # -- closed orders and retention ------------------------------------------------------------

    def _close(self, order: Order, now: int) -> None:
        """The order entered a closed status at `now`: its lines owe a recalculation (what
        they published is only known to be 0 once their SKU was recalculated since)."""
        order.closed_at = now
        self.changes.orders.add(order.order_id)
        for line in order.lines.values():
            self._mark_owing(line)
        if self.closed_order_retention is not None and not self.partial:
            heapq.heappush(self.closing, (now, order.order_id))

    def _reopen(self, order: Order) -> None:
        order.closed_at = None
        self.changes.orders.add(order.order_id)
        for line in order.lines.values():
            self._clear_owing(line)
        self.expired.discard(order.order_id)
        self._ready.discard(order.order_id)

    def _closed_on_arrival(self, order: Order, now: int) -> None:
        """A new order (created, or split off) that is already closed: closed since `now`.
        Its lines owe nothing: they were just added with what they carry marked."""
        if order.order_status in CLOSED:
            order.closed_at = now
            if self.closed_order_retention is not None and not self.partial:
                heapq.heappush(self.closing, (now, order.order_id))

    def _mark_owing(self, line: Line) -> None:
        if line.owing:
            return
        line.owing = True
        lines = self.owing.get(line.sku)
        if lines is None:
            lines = self.owing[line.sku] = set()
        lines.add(line)
        line.order.owing += 1
        self.changes.orders.add(line.order.order_id)

    def _clear_owing(self, line: Line) -> None:
        if not line.owing:
            return
        line.owing = False
        lines = self.owing[line.sku]
        lines.discard(line)
        if not lines:
            del self.owing[line.sku]
        order = line.order
        order.owing -= 1
        self.changes.orders.add(order.order_id)
        if not order.owing and order.order_id in self.expired:
            self._ready.add(order.order_id)

    def _owing_move(self, line: Line, sku: str) -> None:
        """An owing line changes SKU: it owes the new SKU's recalculation."""
        lines = self.owing[line.sku]
        lines.discard(line)
        if not lines:
            del self.owing[line.sku]
        self.owing.setdefault(sku, set()).add(line)

    def _recalculation_set(self, skus: set[str]) -> set[str]:
        """The SKUs a recalculation of `skus` covers: with consider_replacement_sku_qty, also
        those whose short lines draw on them (one hop)."""
        if self.settings.consider_replacement_sku_qty:
            skus = set(skus)
            for sku in list(skus):
                skus.update(self.referrers.get(sku, ()))
        return skus

    def _settle_closed(self, skus: Iterable[str]) -> None:
        """`skus` were recalculated: their lines of closed orders publish 0 now (rules §4: not
        calculated), so they owe nothing. The router's copy, which does not allocate, sets
        that 0 itself; the allocating engine has just published it."""
        owing = self.owing
        if not owing:
            return
        if len(owing) < len(skus):
            settled = [sku for sku in owing if sku in skus]
        else:
            settled = [sku for sku in skus if sku in owing]
        expired, changed = self.expired, self.changes.orders
        for sku in settled:
            for line in owing.pop(sku):
                line.owing = False
                line.published = 0
                order = line.order
                order.owing -= 1
                changed.add(order.order_id)
                if not order.owing and order.order_id in expired:
                    self._ready.add(order.order_id)

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

    def _evict(self, order: Order) -> None:
        """Forget a closed order that owes nothing: every line publishes 0 and holds nothing
        (not calculated), so SKU totals and positions stay as they are."""
        dirty = self.dirty
        for line in order.lines.values():
            if line.pool is not None:  # pragma: no cover - a closed order is never calculated
                self._unplace(line)
            self.lines_by_sku[line.sku].discard(line)
            pending = dirty.get(line.sku)
            if pending:
                pending.discard(line)
            line.live = False
        # An order and its lines refer to each other: without this, the evicted order would
        # wait for a full collection, which the runtimes' collector settings make rare
        # (runtime/tuning.py), and memory would grow by every order closed meanwhile.
        order.lines.clear()
        order_id = order.order_id
        del self.orders[order_id]
        self.expired.discard(order_id)
        if self.held_orders.pop(order_id, None) is not None:
            self.changes.held = True
        self.changes.orders.add(order_id)

    def index_closed(self) -> None:
        """After loading state: queue the closed orders by closing time again."""
        if self.closed_order_retention is None or self.partial:
            return
        self.closing = [
            (order.closed_at, order_id)
            for order_id, order in self.orders.items() if order.closed_at is not None
        ]
        heapq.heapify(self.closing)
        self.expired = set()

    def remember(self, source: str, event_id: str, applied_at: int) -> None:
        """A stored processed id (when loading state)."""
        key = (source, event_id)
        self.processed[key] = applied_at
        if self.dedupe_window is not None:
            heapq.heappush(self._remembered, (applied_at, key))
        if not source:
            self._legacy_ids += 1

    def rebuild(self) -> None:
        """Drop every pool and place every line again (after settings or warehouse types
        changed, or after loading state)."""
        if not self.allocating:
            return
        for line_set in self.dirty.values():
            line_set.clear()
        self.pools.clear()
        self.pools_by_sku.clear()
        for order_id in sorted(self.orders):
            for line in self.orders[order_id].lines.values():
                line.pool = None
                line.frozen = False
                line.alloc = 0
                self._place(line)

    # -- recalculation ---------------------------------------------------------------------------

    def _recalculate(self, skus: set[str], now: int) -> set[str]:
        """Recalculate `skus` (and what the rules add to them); returns every SKU recalculated."""
        if self.settings.consider_replacement_sku_qty:
            # Their short lines draw on the leftover of the SKUs recalculated here (one hop).
            skus = self._recalculation_set(skus)
        for sku in sorted(skus) if len(skus) > 1 else skus:
            if self.incremental:
                targets = self._incremental_targets(sku, now)
            else:
                from .reference import sku_targets

                self.dirty[sku].clear()
                targets = sku_targets(self, sku, now)
            for line, target in targets:
                if line.manual:
                    line.manual = False
                    self._touch(line.order)
                self._set_published(line, target)
        return skus

    def prepare(self, pool: Pool, now: int) -> None:
        """Make a pool's allocation current for a recalculation at `now`."""
        if pool.live_dates is not None:  # only tracked with max_days_to_be_back
            pool.refresh_frozen(policy.frozen_cutoff(self.settings, now))
        pool.settle()

    def _incremental_targets(self, sku: str, now: int) -> list[tuple[Line, int]]:
        pools = self.pools_by_sku.get(sku, {})
        dirty = self.dirty[sku]
        replacement = self.settings.consider_replacement_sku_qty and sku in self.replacements
        if not dirty and not replacement and not any(
            pool.stale or pool.live_dates is not None for pool in pools.values()
        ):
            return []  # nothing changed since the last recalculation (a periodic run)
        for pool in pools.values():
            self.prepare(pool, now)
        candidates = list(dirty)
        dirty.clear()
        extra: dict[Line, int] = {}
        if replacement:
            extra = self.replacement_draws(sku, now)
            for pool in pools.values():
                candidates.extend(pool.short_lines())
        targets = []
        for line in candidates:
            if not line.live or line.sku != sku:
                continue
            if line.pool is None:
                targets.append((line, 0))  # not calculated (rules §4)
            elif line.frozen:
                targets.append((line, line.published))
            else:
                targets.append((line, line.qty - line.alloc - (extra.get(line, 0) if extra else 0)))
        return targets

    @staticmethod
    def target(line: Line, from_replacement: int = 0) -> int:
        if line.pool is None:
            return 0  # not calculated (rules §4)
        if line.frozen:
            return line.published
        return line.qty - line.alloc - from_replacement

    def replacement_draws(self, sku: str, now: int) -> dict[Line, int]:
        """Rules §6: short lines of every SKU sharing `sku`'s replacement draw on the
        replacement's leftover, in one priority order; returns the draws of `sku`'s lines."""
        replacement = self.replacements[sku]
        draws: dict[Line, int] = {}
        for warehouse in self.pools_by_sku.get(sku, {}):
            left = self.leftover(replacement, warehouse, now)
            if not left:
                continue
            group = []
            for other in sorted(self.referrers.get(replacement, ())):
                pool = self.pools.get((other, warehouse))
                if pool is not None:
                    self.prepare(pool, now)
                    group.append(pool.short_lines())
            for line in heapq.merge(*group, key=_line_key):
                give = min(line.qty - line.alloc, left)
                left -= give
                if line.sku == sku:
                    draws[line] = give
                if not left:
                    break
        return draws

    def available(self, sku: str, now: int) -> int:
        """Supply of `sku` that no line holds, summed over the pools it is sold from: each
        pool's leftover, less what short lines of the SKUs it replaces draw on it (with
        consider_replacement_sku_qty). O(warehouses of the SKU), plus the short lines of
        those other SKUs in replacement mode."""
        if not self.incremental:
            from .reference import sku_available

            return sku_available(self, sku, now)
        drawing = self.referrers.get(sku) if self.settings.consider_replacement_sku_qty else None
        total = 0
        for warehouse in policy.supply_warehouses(
            self.settings, self.warehouse_types, self.stock.get(sku)
        ):
            left = self.leftover(sku, warehouse, now)
            for other in drawing or ():
                pool = self.pools.get((other, warehouse))
                if pool is None or left <= 0:
                    continue
                self.prepare(pool, now)
                for line in pool.short_lines():
                    left -= line.qty - line.alloc
                    if left <= 0:
                        break
            total += max(0, left)
        return total

    def leftover(self, sku: str, warehouse: str | None, now: int) -> int:
        pool = self.pools.get((sku, warehouse))
        if pool is None:
            return policy.pool_supply(
                self.settings, self.warehouse_types, self.stock.get(sku), warehouse
            )
        self.prepare(pool, now)
        return pool.leftover

    # -- what is published ------------------------------------------------------------------------

    def _hold(self, scope: _EventScope) -> None:
        for order_id, snapshot in scope.orders_before.items():
            if order_id not in self.held_orders:
                self.held_orders[order_id] = snapshot
                self.changes.held = True
        for sku, total in scope.totals_before.items():
            if sku not in self.held_totals:
                self.held_totals[sku] = total
                self.changes.held = True

    def _order_changes(self, scope: _EventScope, reason: str, cause_id: str):
        changes = []
        held = self.held_orders
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
                lines.append(LineChange(line_id, line.sku, line.qty, line.published, previous))
            if not changed:
                # A line that left the order with a backorder still counts as a change.
                changed = any(v and lid not in order.lines for lid, v in before.items())
            if changed:
                order.published_status = status
                changes.append(
                    OrderBackorderChange(
                        order_id, order.company_id, status, previous_status, reason,
                        cause_id, tuple(lines),
                    )
                )
        return changes

    def _order_partials(self, scope: _EventScope) -> list[OrderPartial]:
        """A shard's view of every order the event touched: its lines here, as they are now;
        and the orders it evicted (docs/sharding.md)."""
        partials = []
        for order_id in sorted(scope.orders_before):
            order = self.orders[order_id]
            lines = tuple(
                PartialLine(line_id, line.sku, line.qty, line.published)
                for line_id, line in order.lines.items()
            )
            partials.append(OrderPartial(order_id, order.company_id, lines))
        partials.extend(scope.evicted)
        return partials

    def _product_changes(self, scope: _EventScope):
        changes = []
        held = self.held_totals
        for sku, before in sorted(scope.totals_before.items()):
            if held and sku in held:
                before = held.pop(sku)
                self.changes.held = True
            if self.totals[sku] != before:
                changes.append(ProductBackorderChange(sku, self.totals[sku], before))
        return changes

    def _position_changes(self, recalculated: set[str], scope: _EventScope, now: int):
        """One SkuPositionChange per SKU whose (available, backorder) differs from what was
        last published for it, by SKU. Available is evaluated for SKUs recalculated by this
        event; a total changed without a recalculation (a manual action) keeps the last
        published available. A SKU's first position is published even when it is (0, 0),
        so consumers learn that it exists, unless the engine knows nothing of the SKU."""
        skus = recalculated | scope.totals_before.keys() if scope.totals_before else recalculated
        if not skus:
            return []
        changes = []
        positions, totals = self.positions, self.totals
        for sku in sorted(skus) if len(skus) > 1 else skus:
            before = positions.get(sku)
            if before is None or sku in recalculated:
                available = self.available(sku, now)
            else:
                available = before[0]
            current = (available, totals.get(sku, 0))
            if current == before:
                continue
            if before is None:
                if current == (0, 0) and sku not in self.stock and sku not in self.lines_by_sku:
                    continue  # a SKU named by a command that nothing else ever mentioned
                before = (0, 0)
            positions[sku] = current
            self.changes.positions.add(sku)
            changes.append(SkuPositionChange(sku, current[0], current[1], before[0], before[1]))
        return changes

    # -- persistence hand-off -------------------------------------------------------------------

    def take_changes(self) -> Changes:
        changes, self.changes = self.changes, Changes()
        return changes


def _line_key(line: Line) -> tuple:
    return line.key


def _micros(window: timedelta | None) -> int | None:
    if window is None:
        return None
    if window <= timedelta(0):
        raise ValueError(f"a retention window must be positive, not {window}")
    return window // timedelta(microseconds=1)


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


def _duration(micros: int) -> str:
    """A window as people say it: "30 days", "36 hours", "90 seconds"."""
    for unit, size in (("day", 86_400_000_000), ("hour", 3_600_000_000), ("minute", 60_000_000),
                       ("second", 1_000_000)):
        if micros % size == 0:
            count = micros // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{micros} µs"


__all__ = ["NONE", "Engine"]
