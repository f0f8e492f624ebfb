"""Channel-sync's own view of what the feeds need, kept current from events.

- purchase orders (`PurchaseOrderUpdated`: the PO's full state at its time; a `POReceived`
  naming the PO afterwards lowers the open quantity until the next update),
- shipping containers (`ContainerUpdated`: what is still on the way, with its arrival date),
- product names (`ProductUpserted`), the two client settings that shape the feeds
  (`SettingsChanged`: `use_shipping_containers_for_po`, `send_magento_backorder_tags`),
- and each SKU's position as the recalculator last published it (`SkuPositionChanged`).

`Projection.apply(event)` takes a validated event and returns the SKUs whose feed rows may
have changed (`EVERY_SKU` when a setting changed). Pure: no I/O, no clock. The changed keys
are collected in `changes` for the adapter to persist.
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
class Position:
    available: int
    backorder: int


@dataclass(slots=True)
class ProjectionChanges:
    """Keys changed since the last `take_changes()`."""

    purchase_orders: set[str] = field(default_factory=set)
    containers: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    positions: set[str] = field(default_factory=set)
    settings: bool = False
    receipts: list[str] = field(default_factory=list)  # ids of applied POReceived events


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
        self.pos_by_sku: dict[str, set[str]] = defaultdict(set)
        self.containers_by_sku: dict[str, set[str]] = defaultdict(set)
        self.changes = ProjectionChanges()

    # -- the one entry point ---------------------------------------------------------------

    def apply(self, event: Any) -> frozenset[str]:
        """Apply a validated event (a `backorder_events` model); returns the SKUs whose rows
        may have changed. Events that do not concern the feeds change nothing."""
        handler = getattr(self, f"_{event.type}", None)
        if handler is None:
            return NOTHING
        return handler(event)

    # -- handlers ----------------------------------------------------------------------------

    def _PurchaseOrderUpdated(self, event) -> frozenset[str]:
        data = event.data
        touched = self._forget_po(data.po_id)
        lines = [
            POLine(line.sku, line.qty_ordered, line.qty_received, as_date(line.estimated_delivery_date))
            for line in data.lines
        ]
        self.purchase_orders[data.po_id] = lines
        for line in lines:
            self.pos_by_sku[line.sku].add(data.po_id)
            touched.add(line.sku)
        self.changes.purchase_orders.add(data.po_id)
        return frozenset(touched)

    def _POReceived(self, event) -> frozenset[str]:
        data = event.data
        lines = self.purchase_orders.get(data.po_id)
        if lines is None or event.id in self.receipts_seen:
            return NOTHING  # a PO the feeds never heard of, or a receipt already counted
        touched = set()
        for item in data.lines:
            left = item.qty
            # Lines of that SKU in the PO, soonest expected first, take the receipt.
            for line in sorted((each for each in lines if each.sku == item.sku), key=_eta_key):
                take = min(left, line.open_qty)
                line.qty_received += take
                left -= take
                if take:
                    touched.add(item.sku)
                if not left:
                    break
        self.receipts_seen.add(event.id)
        self.changes.receipts.append(event.id)
        if touched:
            self.changes.purchase_orders.add(data.po_id)
        return frozenset(touched)

    def _ContainerUpdated(self, event) -> frozenset[str]:
        data = event.data
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
        for sku in lines:
            self.containers_by_sku[sku].add(data.container_id)
            touched.add(sku)
        self.changes.containers.add(data.container_id)
        return frozenset(touched)

    def _ProductUpserted(self, event) -> frozenset[str]:
        data = event.data
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

    def skus(self) -> list[str]:
        """Every SKU a feed row can be made for (those with a published position)."""
        return sorted(self.positions)

    def take_changes(self) -> ProjectionChanges:
        changes, self.changes = self.changes, ProjectionChanges()
        return changes

    # -- loading (the adapter fills an empty projection from stored rows) --------------------

    def load_purchase_order(self, po_id: str, lines: list[POLine]) -> None:
        self.purchase_orders[po_id] = lines
        for line in lines:
            self.pos_by_sku[line.sku].add(po_id)

    def load_container(self, container_id: str, container: Container) -> None:
        self.containers[container_id] = container
        for sku in container.lines:
            self.containers_by_sku[sku].add(container_id)


def _eta_key(line: POLine) -> tuple:
    return (line.eta is None, line.eta or date.min)
