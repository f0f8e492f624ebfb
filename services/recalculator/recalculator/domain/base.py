"""What every role of the engine shares (`engine.py`: `Engine`, `RoutingEngine`;
`shard_engine.py`: `ShardEngine`): the state, the run of one event or operation, and the
bookkeeping of orders, lines, stock and the published values that every role keeps alike.

A role says what differs through a few methods that do nothing here: whether an input is
refused before it is handled (`_refuse`, the dedupe window), how an accepted one is run
(`_apply_event`, actions that wait), what an applied event gives (`_outcome`), what is
remembered and forgotten after it (`_record`, `_retain`, `_queue_closed`), and where lines
are placed for allocation (`_place`, `_unplace`, `_replace`, `rebuild`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

from backorder_events import BackorderSettings

from . import policy
from .changes import Changes
from .handlers import EventHandlers
from .incoming import SkuIncoming
from .model import CLOSED, NONE, Line, Order, to_us
from .pool import Pool
from .results import REJECTED, OrderPartial, Outcome, Rejected, UnknownOrder

MANUAL_TYPES = frozenset({"ReallocateBackorder", "MarkBackorder", "MarkNotBackorder"})
# The commands of events.md: stamped by an operator or by the periodic run's scheduler (from
# the wall clock), they do not move the business clock; the input events do.
COMMAND_TYPES = MANUAL_TYPES | {"RecalculateBackorders"}


class EventScope:
    """What one event touched: published values before it began, and SKUs to recalculate."""

    __slots__ = ("evicted", "orders_before", "recalc", "totals_before")

    def __init__(self) -> None:
        # order id → (published status, {line id: published backorder}) before the event
        self.orders_before: dict[str, tuple[str, dict[str, int]]] = {}
        self.totals_before: dict[str, int] = {}
        self.recalc: set[str] = set()
        self.evicted: tuple[OrderPartial, ...] = ()  # a shard's orders evicted by this operation


class EngineBase(EventHandlers):
    def __init__(self, settings: BackorderSettings | None = None, *,
                 incremental: bool = True) -> None:
        self.settings = settings or BackorderSettings()
        self.incremental = incremental
        self.orders: dict[str, Order] = {}
        self.stock: dict[str, dict[str, int]] = {}  # sku → warehouse → physical qty
        self.warehouse_types: dict[str, str] = {}
        self.warehouse_names: dict[str, str | None] = {}
        self.replacements: dict[str, str] = {}  # sku → replacement sku
        self.product_names: dict[str, str | None] = {}
        self.referrers: dict[str, set[str]] = defaultdict(set)  # replacement → skus
        self.lines_by_sku: dict[str, set[Line]] = defaultdict(set)
        # Supply on its way (`incoming.py`): by SKU, and the SKUs of each PO and container.
        self.incoming: dict[str, SkuIncoming] = {}
        self.po_skus: dict[str, set[str]] = {}
        self.container_skus: dict[str, set[str]] = {}
        # Pools and the lines changed since their SKU was last recalculated (empty in a role
        # that allocates nothing).
        self.pools: dict[tuple[str, str | None], Pool] = {}
        self.pools_by_sku: dict[str, dict[str | None, Pool]] = defaultdict(dict)
        self.dirty: dict[str, set[Line]] = defaultdict(set)
        self.totals: dict[str, int] = defaultdict(int)  # sku → total published backorder
        # sku → (available, backorder) last published in a SkuPositionChanged
        self.positions: dict[str, tuple[int, int]] = {}
        self.last_time: int | None = None  # time of the last applied event
        # The business clock: the newest time of the applied input events (commands do not
        # move it). None until the first one.
        self.clock: int | None = None
        # Lines of closed orders that may still publish a backorder, by SKU; the orders
        # closed for longer than the retention that still have such lines (`retention.py`),
        # and those of them that may have become evictable.
        self.owing: dict[str, set[Line]] = {}
        self.expired: set[str] = set()
        self._ready: set[str] = set()
        # While the workflow is disabled nothing is published, so the values downstream last
        # saw are held here (first snapshot wins) until the order or SKU is published again.
        self.held_orders: dict[str, tuple[str, dict[str, int]]] = {}
        self.held_totals: dict[str, int] = {}
        self.changes = Changes()
        self._scope: EventScope | None = None
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
            "PurchaseOrderUpdated": self._purchase_order_updated,
            "ContainerUpdated": self._container_updated,
            "RecalculateBackorders": self._recalculate_backorders,
            "ReallocateBackorder": self._reallocate_backorder,
            "MarkBackorder": self._mark_backorder,
            "MarkNotBackorder": self._mark_not_backorder,
        }

    # -- the one entry point -------------------------------------------------------------

    def handle(self, event, ref=None) -> Outcome:
        """Apply one validated event (a `backorder_events` model). Never raises for bad
        business input: that comes back as a rejected outcome and changes nothing. `ref`
        is the caller's opaque reference to the event (see `Engine`)."""
        now = to_us(event.time)
        key = (event.source, event.id)
        refused = self._refuse(event, key, now)
        if refused is not None:
            return refused
        handler = self._handlers.get(event.type)
        if handler is None:
            return Outcome(REJECTED, f"unknown event type {event.type!r}")
        return self._apply_event(event, key, now, handler, ref)

    def _refuse(self, event, key: tuple[str, str], now: int) -> Outcome | None:
        """Why an input is refused before it is handled (a duplicate), or None."""
        return None

    def _apply_event(self, event, key: tuple[str, str], now: int, handler, ref) -> Outcome:
        return self._run(event.id, event.type, handler, event.data, now, key)

    def _run(
        self, event_id: str, event_type: str, handler, data, now: int,
        key: tuple[str, str] | None = None, on_unknown: Callable[[], Outcome] | None = None,
    ) -> Outcome:
        """Apply one event or operation; with `key`, it is recorded as processed."""
        scope = self._scope = EventScope()
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
        if key is not None:
            self._record(key, now, clock)
        self.last_time = now
        self.changes.clock = True
        outcome = self._outcome(scope, event_type, event_id, now)
        if clock is not None:
            self._retain(clock, outcome)
        self._scope = None
        outcome.handoff, self._handoff = self._handoff, None
        return outcome

    def _outcome(self, scope: EventScope, event_type: str, event_id: str, now: int) -> Outcome:
        """What an applied event gives: recalculations and what they publish."""
        raise NotImplementedError

    def _record(self, key: tuple[str, str], now: int, clock: int | None) -> None:
        """Remember an applied input's identity (the dedupe window)."""

    def _retain(self, clock: int, outcome: Outcome) -> None:
        """After an applied event: forget and evict what the business clock left behind."""

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
        self._dates_line(line)
        if line.frozen:
            line.pool.adjust_frozen(value - old)
        if value and line.order.closed_at is not None:
            self._mark_owing(line)  # until its SKU's next recalculation takes it to 0

    def _set_manual(self, line: Line, value: int) -> None:
        self._touch(line.order)
        self._set_published(line, value)
        line.manual = True

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

    # A role that allocates places lines in pools (`recalculation.py`); the others keep no
    # pools, and these do nothing.

    def _place(self, line: Line) -> None:
        pass

    def _unplace(self, line: Line) -> None:
        pass

    def _replace(self, line: Line) -> None:
        """Re-place a line whose order changed."""

    def rebuild(self) -> None:
        """Drop every pool and place every line again (after settings or warehouse types
        changed, or after loading state)."""

    # A role that allocates keeps expected dates (`dating.py`); the others note nothing.

    def _dates_line(self, line: Line) -> None:
        """The line's published backorder, pool or priority changed."""

    def _supply_changed(self, skus: Iterable[str]) -> None:
        """The incoming supply of `skus` changed."""

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

    # -- closed orders ----------------------------------------------------------------------------

    def _close(self, order: Order, now: int) -> None:
        """The order entered a closed status at `now`: its lines owe a recalculation (what
        they published is only known to be 0 once their SKU was recalculated since)."""
        order.closed_at = now
        self.changes.orders.add(order.order_id)
        for line in order.lines.values():
            self._mark_owing(line)
        self._queue_closed(order.order_id, now)

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
            self._queue_closed(order.order_id, now)

    def _queue_closed(self, order_id: str, closed_at: int) -> None:
        """An order closed at `closed_at`: a role that evicts closed orders queues it."""

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
        """After loading state: queue the closed orders by closing time again (a role that
        evicts closed orders)."""

    # -- persistence hand-off -------------------------------------------------------------------

    def take_changes(self) -> Changes:
        changes, self.changes = self.changes, Changes()
        return changes
