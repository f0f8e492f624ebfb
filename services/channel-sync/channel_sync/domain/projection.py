"""Channel-sync's own view of what the feeds need, kept current from events.

- purchase orders (`PurchaseOrderUpdated`: the PO's full state at its time; a `POReceived`
  naming the PO lowers the open quantity until the next update). The records of one PO can
  come on different partitions, so out of order: each PO keeps the time of the update it
  holds, an update older than it is ignored, and a receipt counts only when it is later
  than that update (an earlier one is already in the update's `qty_received`). Receipts
  later than the update are kept, so a newer update gets those still later than itself
  applied again; a receipt for a PO not heard of yet waits for it.
- shipping containers (`ContainerUpdated`: what is still on the way, with its arrival date),
- product names (`ProductUpserted`), the two client settings that shape the feeds
  (`SettingsChanged`: `use_shipping_containers_for_po`, `send_magento_backorder_tags`),
- and each SKU's position as the recalculator last published it (`SkuPositionChanged`).

`Projection.apply(event)` takes a validated event and returns the SKUs whose feed rows may
have changed (`EVERY_SKU` when a setting changed). Pure: no I/O, no clock. The changed keys
are collected in `changes` for the adapter to persist.

Retention: the projection keeps its business clock (the latest `time` taken in), and
`prune(cutoff)` forgets the purchase orders fully received and the containers with nothing
left on the way whose last update is older than `cutoff`, and the receipts older than it.
From then on the cut-off is a horizon: a purchase-order update, receipt or container update
older than it is ignored (it could only undo what was pruned, being that late).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

# Returned by `apply` when every SKU's rows may have changed (a feed setting changed).
EVERY_SKU: frozenset[str] = frozenset({"*every-sku*"})
NOTHING: frozenset[str] = frozenset()

FEED_SETTINGS = ("use_shipping_containers_for_po", "send_magento_backorder_tags")


@dataclass(slots=True)
class POLine:
    sku: str
    qty_ordered: int
    qty_received: int
    eta: date | None  # estimated delivery date

    @property
    def open_qty(self) -> int:
        return max(0, self.qty_ordered - self.qty_received)


@dataclass(slots=True)
class Container:
    eta: date | None  # estimated arrival date
    lines: dict[str, int]  # sku → quantity still on the way


@dataclass(frozen=True, slots=True)
class Receipt:
    """A POReceived kept with its PO: its time and (sku, qty) lines."""

    event_id: str
    po_id: str
    at: datetime
    lines: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Position:
    available: int
    backorder: int


@dataclass(slots=True)
class Pruned:
    """What `Projection.prune` forgot, for the adapter to delete."""

    purchase_orders: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)
    receipts: list[str] = field(default_factory=list)  # event ids of receipts held in memory


@dataclass(slots=True)
class ProjectionChanges:
    """Keys changed since the last `take_changes()`."""

    purchase_orders: set[str] = field(default_factory=set)
    containers: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    positions: set[str] = field(default_factory=set)
    settings: bool = False
    receipts: list[Receipt] = field(default_factory=list)  # POReceived events taken in
    clock: bool = False  # the business clock moved


def as_date(moment: datetime | None) -> date | None:
    return None if moment is None else moment.date()


class Projection:
    def __init__(self) -> None:
        self.purchase_orders: dict[str, list[POLine]] = {}
        self.containers: dict[str, Container] = {}
        self.names: dict[str, str | None] = {}
        self.positions: dict[str, Position] = {}
        self.use_containers = False  # use_shipping_containers_for_po (rules §2 default)
        self.magento_tags = True  # send_magento_backorder_tags
        self.receipts_seen: set[str] = set()
        self.po_times: dict[str, datetime] = {}  # the time of the update each PO holds
        self.po_receipts: dict[str, list[Receipt]] = defaultdict(list)  # later than it, or waiting
        self.pos_by_sku: dict[str, set[str]] = defaultdict(set)
        self.containers_by_sku: dict[str, set[str]] = defaultdict(set)
        self.container_times: dict[str, datetime] = {}  # the time of the update each container holds
        self.clock: datetime | None = None  # the latest business time taken in
        self.horizon: datetime | None = None  # supply events older than this are ignored
        self.changes = ProjectionChanges()

    # -- the one entry point ---------------------------------------------------------------

    def apply(self, event: Any) -> frozenset[str]:
        """Apply a validated event (a `backorder_events` model); returns the SKUs whose rows
        may have changed. Events that do not concern the feeds change nothing."""
        handler = getattr(self, f"_{event.type}", None)
        if handler is None:
            return NOTHING
        if self.clock is None or event.time > self.clock:
            self.clock = event.time
            self.changes.clock = True
        return handler(event)

    def _too_late(self, event) -> bool:
        """Older than what was pruned: it could only bring back a closed PO or container."""
        return self.horizon is not None and event.time < self.horizon

    # -- handlers ----------------------------------------------------------------------------

    def _PurchaseOrderUpdated(self, event) -> frozenset[str]:
        data = event.data
        if self._too_late(event):
            return NOTHING
        held = self.po_times.get(data.po_id)
        if held is not None and event.time < held:
            return NOTHING  # older than the state held: came late from another partition
        touched = self._forget_po(data.po_id)
        lines = [
            POLine(line.sku, line.qty_ordered, line.qty_received, as_date(line.estimated_delivery_date))
            for line in data.lines
        ]
        self.purchase_orders[data.po_id] = lines
        self.po_times[data.po_id] = event.time
        for line in lines:
            self.pos_by_sku[line.sku].add(data.po_id)
            touched.add(line.sku)
        # Receipts later than this update are not in its qty_received: applied again.
        kept = [r for r in self.po_receipts.pop(data.po_id, []) if r.at > event.time]
        for receipt in sorted(kept, key=lambda r: (r.at, r.event_id)):
            self._receive(lines, receipt)
        if kept:
            self.po_receipts[data.po_id] = kept
        self.changes.purchase_orders.add(data.po_id)
        return frozenset(touched)

    def _POReceived(self, event) -> frozenset[str]:
        data = event.data
        if event.id in self.receipts_seen or self._too_late(event):
            return NOTHING  # a receipt already counted, or older than what was pruned
        receipt = Receipt(event.id, data.po_id, event.time, tuple((item.sku, item.qty) for item in data.lines))
        self.receipts_seen.add(event.id)
        self.changes.receipts.append(receipt)
        lines = self.purchase_orders.get(data.po_id)
        held = self.po_times.get(data.po_id)
        if lines is None:
            self.po_receipts[data.po_id].append(receipt)  # waits for its PO
            return NOTHING
        if held is not None and event.time <= held:
            return NOTHING  # already in the qty_received of the update held
        self.po_receipts[data.po_id].append(receipt)
        touched = self._receive(lines, receipt)
        if touched:
            self.changes.purchase_orders.add(data.po_id)
        return frozenset(touched)

    @staticmethod
    def _receive(lines: list[POLine], receipt: Receipt) -> set[str]:
        touched = set()
        for sku, qty in receipt.lines:
            left = qty
            # Lines of that SKU in the PO, soonest expected first, take the receipt.
            for line in sorted((each for each in lines if each.sku == sku), key=_eta_key):
                take = min(left, line.open_qty)
                line.qty_received += take
                left -= take
                if take:
                    touched.add(sku)
                if not left:
                    break
        return touched

    def _ContainerUpdated(self, event) -> frozenset[str]:
        data = event.data
        if self._too_late(event):
            return NOTHING
        touched = set()
        old = self.containers.get(data.container_id)
        if old is not None:
            for sku in old.lines:
                self.containers_by_sku[sku].discard(data.container_id)
                touched.add(sku)
        lines: dict[str, int] = {}
        for line in data.lines:
            lines[line.sku] = lines.get(line.sku, 0) + line.qty
        self.containers[data.container_id] = Container(as_date(data.estimated_arrival_date), lines)
        self.container_times[data.container_id] = event.time
        for sku in lines:
            self.containers_by_sku[sku].add(data.container_id)
            touched.add(sku)
        self.changes.containers.add(data.container_id)
        return frozenset(touched)

    def _ProductUpserted(self, event) -> frozenset[str]:
        data = event.data
        if data.name is None:
            return NOTHING  # an upsert without a name leaves the name known alone
        if self.names.get(data.sku, ...) == data.name:
            return NOTHING
        self.names[data.sku] = data.name
        self.changes.names.add(data.sku)
        return frozenset({data.sku})

    def _SettingsChanged(self, event) -> frozenset[str]:
        patch = event.data.settings
        given = patch.model_fields_set
        changed = False
        if "use_shipping_containers_for_po" in given:
            value = bool(patch.use_shipping_containers_for_po)
            changed |= value != self.use_containers
            self.use_containers = value
        if "send_magento_backorder_tags" in given:
            value = bool(patch.send_magento_backorder_tags)
            changed |= value != self.magento_tags
            self.magento_tags = value
        if not changed:
            return NOTHING
        self.changes.settings = True
        return EVERY_SKU

    def _SkuPositionChanged(self, event) -> frozenset[str]:
        data = event.data
        position = Position(data.available_qty, data.backorder_qty)
        if self.positions.get(data.sku) == position:
            return NOTHING
        self.positions[data.sku] = position
        self.changes.positions.add(data.sku)
        return frozenset({data.sku})

    # -- helpers -------------------------------------------------------------------------------

    def _forget_po(self, po_id: str) -> set[str]:
        touched = set()
        for line in self.purchase_orders.pop(po_id, ()):
            self.pos_by_sku[line.sku].discard(po_id)
            touched.add(line.sku)
        return touched

    # -- retention -----------------------------------------------------------------------------

    def prune(self, cutoff: datetime) -> Pruned:
        """Forget what no feed needs any more and what no later event can change: purchase
        orders with nothing left open and containers with nothing left on the way, whose
        update held is older than `cutoff`, and the receipts held in memory older than it
        (a receipt that old is in its update's `qty_received` or can no longer be applied:
        an update older than the horizon is ignored). `cutoff` becomes the horizon."""
        pruned = Pruned()
        for po_id, lines in list(self.purchase_orders.items()):
            held = self.po_times.get(po_id)
            if held is not None and held < cutoff and not any(line.open_qty for line in lines):
                self._forget_po(po_id)
                self.po_times.pop(po_id, None)
                pruned.purchase_orders.append(po_id)
        for container_id, container in list(self.containers.items()):
            held = self.container_times.get(container_id)
            if held is not None and held < cutoff and not any(qty > 0 for qty in container.lines.values()):
                for sku in container.lines:
                    self.containers_by_sku[sku].discard(container_id)
                del self.containers[container_id]
                del self.container_times[container_id]
                pruned.containers.append(container_id)
        for po_id, receipts in list(self.po_receipts.items()):
            kept = [r for r in receipts if r.at >= cutoff]
            pruned.receipts += [r.event_id for r in receipts if r.at < cutoff]
            if kept:
                self.po_receipts[po_id] = kept
            else:
                del self.po_receipts[po_id]
        self.receipts_seen.difference_update(pruned.receipts)
        for sku in [s for s, ids in self.pos_by_sku.items() if not ids]:
            del self.pos_by_sku[sku]
        for sku in [s for s, ids in self.containers_by_sku.items() if not ids]:
            del self.containers_by_sku[sku]
        if self.horizon is None or cutoff > self.horizon:
            self.horizon = cutoff
        return pruned

    def forget_receipts(self, event_ids) -> None:
        """Receipts deleted from storage (older than the horizon): no longer remembered."""
        self.receipts_seen.difference_update(event_ids)

    def skus(self) -> list[str]:
        """Every SKU a feed row can be made for (those with a published position)."""
        return sorted(self.positions)

    def take_changes(self) -> ProjectionChanges:
        changes, self.changes = self.changes, ProjectionChanges()
        return changes

    # -- loading (the adapter fills an empty projection from stored rows) --------------------

    def load_purchase_order(self, po_id: str, lines: list[POLine], updated_at: datetime | None = None) -> None:
        self.purchase_orders[po_id] = lines
        if updated_at is not None:
            self.po_times[po_id] = updated_at
        for line in lines:
            self.pos_by_sku[line.sku].add(po_id)

    def load_receipt(self, receipt: Receipt) -> None:
        """A stored receipt: kept while later than its PO's update or waiting for the PO."""
        self.receipts_seen.add(receipt.event_id)
        held = self.po_times.get(receipt.po_id)
        if receipt.po_id not in self.purchase_orders or held is None or receipt.at > held:
            self.po_receipts[receipt.po_id].append(receipt)

    def load_container(self, container_id: str, container: Container, updated_at: datetime | None = None) -> None:
        self.containers[container_id] = container
        if updated_at is not None:
            self.container_times[container_id] = updated_at
        for sku in container.lines:
            self.containers_by_sku[sku].add(container_id)


def _eta_key(line: POLine) -> tuple:
    return (line.eta is None, line.eta or date.min)
