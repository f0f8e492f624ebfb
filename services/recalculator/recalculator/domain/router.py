"""The router of the SKU-sharded recalculator (docs/sharding.md). Pure.

It validates every input event against a copy of the engine that keeps orders, lines and
reference data but allocates nothing (`engine.RoutingEngine`), so an event is accepted or
refused exactly as the one-process engine would. An accepted event becomes records for the
SKU shards: the event restricted to each shard's lines or SKUs, and the operations that keep
shards whole (an order's header for a shard that has not seen it, a line moving to another
shard's SKU, SKUs moving when their replacement groups merge).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from backorder_events import BackorderSettings

from .engine import RoutingEngine
from .results import APPLIED
from .sharding import (
    AcquireSkus,
    ArriveLine,
    DepartLine,
    EvictOrder,
    ReleaseSkus,
    Restricted,
    Routed,
    SkuGroups,
    introduce,
    stable_shard,
)

BROADCAST = frozenset({"WarehouseUpserted", "SettingsChanged", "ProductUpserted"})


class Router:
    def __init__(
        self,
        shards: int,
        settings: BackorderSettings | None = None,
        *,
        dedupe_window: timedelta | None = None,
        closed_order_retention: timedelta | None = None,
        action_wait: timedelta | None = None,
    ) -> None:
        """`action_wait` is taken and not used: the router refuses a manual action naming an
        order not known yet at once, where the one-process engine holds it for a while
        (docs/sharding.md, "Known differences")."""
        if shards < 1:
            raise ValueError("a sharded recalculator needs at least one shard")
        self.shards = shards
        # The router's copy decides duplicates and evictions for every stage (its shards
        # keep no window of their own).
        self.engine = RoutingEngine(
            settings, dedupe_window=dedupe_window, closed_order_retention=closed_order_retention,
        )
        self.groups = SkuGroups()
        self.known: dict[str, set[int]] = {}  # order id → shards that hold its header
        self._staged: dict[str, set[int]] = {}  # known-to changes of the event being routed
        self.changed_orders: set[str] = set()  # orders whose known-to changed, for saving
        self._planners = {
            "OrderCreated": self._order_created,
            "OrderSplit": self._order_split,
            "ItemAdded": self._item_added,
            "ItemReplaced": self._item_replaced,
            "OrderStatusChanged": self._order_wide,
            "POReceived": self._po_received,
            "InventoryAdjusted": self._inventory_adjusted,
            "PurchaseOrderUpdated": self._supply_document,
            "ContainerUpdated": self._supply_document,
            "RecalculateBackorders": self._recalculate,
            "ReallocateBackorder": self._reallocate,
            "MarkBackorder": self._mark,
            "MarkNotBackorder": self._mark,
        }

    def shard_of(self, sku: str) -> int:
        return stable_shard(self.groups.root(sku), self.shards)

    def route(self, event) -> Routed:
        planner = self._planners.get(event.type)
        records: list[tuple[int, object]] = []
        self._staged = {}
        try:
            # Planned on the state before the event (the line's old SKU, the order's shards);
            # an event the engine then refuses had references that may not resolve here.
            if planner is not None:
                planner(event, records)
        except (KeyError, AttributeError):
            records = None
        outcome = self.engine.handle(event)
        publish = self.engine.settings.enable_backorder_workflow
        if outcome.status != APPLIED:
            return Routed(outcome.status, outcome.reason, publish=publish)
        if records is None:
            raise AssertionError(f"no route for accepted event {event.id!r}")
        self._commit_staged()
        evictions = self._evictions(event, outcome.evicted)
        if event.type in BROADCAST:
            # Reference data recalculates nothing, so what it evicted was already evictable
            # before it: the orders go first, before any SKU moves with its lines.
            records.extend(evictions)
            evictions = []
            if event.type == "ProductUpserted" and event.data.replacement_sku:
                self._regroup(event, records)
            records.extend((shard, event) for shard in range(self.shards))
        records.extend(evictions)  # after the event's own records, which may settle them
        return Routed(APPLIED, None, records, publish, outcome.evicted)

    def _evictions(self, event, order_ids: list[str]) -> list[tuple[int, EvictOrder]]:
        """Closed orders the router's copy evicted after `event`: every shard that knows one
        forgets it too (docs/behaviour.md, Retention)."""
        records = []
        for order_id in order_ids:
            for shard in sorted(self.known.pop(order_id, ())):
                records.append((shard, EvictOrder(event.type, order_id)))
            self.changed_orders.add(order_id)
        return records

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _restricted(event, **keep: list[int]) -> Restricted:
        return Restricted(event, {name: tuple(indices) for name, indices in keep.items()})

    def _line_shards(self, order) -> dict[int, list]:
        by_shard = defaultdict(list)
        for line in order.lines.values():
            by_shard[self.shard_of(line.sku)].append(line)
        return by_shard

    def _commit_staged(self) -> None:
        self.known.update(self._staged)
        self.changed_orders.update(self._staged)
        self._staged = {}

    def _known(self, order_id: str) -> set[int]:
        staged = self._staged.get(order_id)
        return staged if staged is not None else self.known.get(order_id, set())

    def _stage(self, order_id: str, shards: set[int]) -> None:
        self._staged[order_id] = shards

    def _introduce(self, order_id: str, shard: int, cause_type: str, records) -> None:
        known = self._known(order_id)
        if shard in known:
            return
        self._stage(order_id, known | {shard})
        order = self.engine.orders[order_id]
        records.append((shard, introduce(cause_type, order)))

    # -- planners, by event type --------------------------------------------------------------

    def _order_created(self, event, records) -> None:
        data = event.data
        if data.order_id in self.engine.orders:
            return  # refused as a duplicate order
        by_shard = defaultdict(list)
        for index, item in enumerate(data.lines):
            by_shard[self.shard_of(item.sku)].append(index)
        self._stage(data.order_id, set(by_shard))
        for shard in sorted(by_shard):
            records.append((shard, self._restricted(event, lines=by_shard[shard])))

    def _order_split(self, event, records) -> None:
        data = event.data
        order = self.engine.orders[data.order_id]
        if data.new_order_id in self.engine.orders:
            return
        by_shard = defaultdict(list)
        for index, item in enumerate(data.lines):
            by_shard[self.shard_of(order.lines[item.line_id].sku)].append(index)
        shards = sorted(self._known(data.order_id))
        self._stage(data.new_order_id, set(shards))
        for shard in shards:
            records.append((shard, self._restricted(event, lines=by_shard.get(shard, []))))

    def _item_added(self, event, records) -> None:
        data = event.data
        shard = self.shard_of(data.line.sku)
        self._introduce(data.order_id, shard, event.type, records)
        records.append((shard, event))

    def _item_replaced(self, event, records) -> None:
        data = event.data
        line = self.engine.orders[data.order_id].lines[data.line_id]
        old, new = self.shard_of(line.sku), self.shard_of(data.new_sku)
        if old == new:
            records.append((old, event))
            return
        records.append((old, DepartLine(event.type, data.order_id, data.line_id)))
        self._introduce(data.order_id, new, event.type, records)
        qty = data.qty if data.qty is not None else line.qty
        records.append((new, ArriveLine(
            event.type, data.order_id, data.line_id, data.new_sku, qty, line.name,
            line.unit_price, old,
        )))

    def _order_wide(self, event, records) -> None:
        for shard in sorted(self._known(event.data.order_id)):
            records.append((shard, event))

    def _po_received(self, event, records) -> None:
        by_shard = defaultdict(list)
        for index, item in enumerate(event.data.lines):
            by_shard[self.shard_of(item.sku)].append(index)
        for shard in sorted(by_shard):
            records.append((shard, self._restricted(event, lines=by_shard[shard])))

    def _supply_document(self, event, records) -> None:
        """A PO or container reaches the shards of the SKUs it brings and of those it
        brought (which it may no longer), restricted to its lines of their SKUs."""
        data = event.data
        if event.type == "PurchaseOrderUpdated":
            held = self.engine.po_skus.get(data.po_id, ())
        else:
            held = self.engine.container_skus.get(data.container_id, ())
        by_shard: dict[int, list[int]] = {self.shard_of(sku): [] for sku in held}
        for index, item in enumerate(data.lines):
            by_shard.setdefault(self.shard_of(item.sku), []).append(index)
        for shard in sorted(by_shard):
            records.append((shard, self._restricted(event, lines=by_shard[shard])))

    def _inventory_adjusted(self, event, records) -> None:
        records.append((self.shard_of(event.data.sku), event))

    def _recalculate(self, event, records) -> None:
        data = event.data
        if not data.order_ids and not data.skus:
            records.extend((shard, event) for shard in range(self.shards))
            return
        orders, skus = defaultdict(list), defaultdict(list)
        for index, order_id in enumerate(data.order_ids):
            for shard in self._line_shards(self.engine.orders[order_id]):
                orders[shard].append(index)
        for index, sku in enumerate(data.skus):
            skus[self.shard_of(sku)].append(index)
        for shard in sorted(orders.keys() | skus.keys()):
            records.append((shard, self._restricted(
                event, order_ids=orders.get(shard, []), skus=skus.get(shard, [])
            )))

    def _reallocate(self, event, records) -> None:
        order = self.engine.orders[event.data.order_id]
        by_shard = defaultdict(list)
        for index, item in enumerate(event.data.lines):
            by_shard[self.shard_of(order.lines[item.line_id].sku)].append(index)
        for shard in sorted(by_shard):
            records.append((shard, self._restricted(event, lines=by_shard[shard])))

    def _mark(self, event, records) -> None:
        by_shard = defaultdict(list)
        for index, order_id in enumerate(event.data.order_ids):
            for shard in self._line_shards(self.engine.orders[order_id]):
                by_shard[shard].append(index)
        for shard in sorted(by_shard):
            records.append((shard, self._restricted(event, order_ids=by_shard[shard])))

    # -- replacement groups -----------------------------------------------------------------

    def _regroup(self, event, records) -> None:
        """A replacement relation links two groups: when they sat on different shards, the
        SKUs of one move (with their lines and stock) before the product event is applied."""
        data = event.data
        merged = self.groups.link(data.sku, data.replacement_sku)
        if merged is None:
            return
        moved, old_root, new_root = merged
        source = stable_shard(old_root, self.shards)
        target = stable_shard(new_root, self.shards)
        if source == target:
            return
        skus = tuple(sorted(moved))
        orders = sorted({
            line.order.order_id
            for sku in skus
            for line in self.engine.lines_by_sku.get(sku, ())
        })
        for order_id in orders:
            self._introduce(order_id, target, event.type, records)
        self._commit_staged()
        records.append((source, ReleaseSkus(event.type, skus)))
        records.append((target, AcquireSkus(event.type, skus, source)))
