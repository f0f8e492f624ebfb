"""Supply on its way to a SKU, and the two dates the feeds can tell a buyer.

With `use_shipping_containers_for_po` the incoming supply is the containers' quantities and
estimated arrival dates; otherwise it is the open purchase-order lines
(`qty_ordered - qty_received`) and their estimated delivery dates (the seed: "Enable
Shipping Containers for PO").

- `earliest_eta`: the soonest date of any open supply.
- `next_available`: the date of the first supply, in date order, whose cumulative open
  quantity exceeds the SKU's current backorders. Units already promised to waiting orders
  are not available to a new buyer, so this is when a unit ordered now can ship. None when
  everything on order is already promised, or when the supply that crosses has no date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from .projection import Projection


@dataclass(frozen=True, slots=True)
class Incoming:
    source: str  # PO or container id
    qty: int
    eta: date | None


@dataclass(frozen=True, slots=True)
class OnOrder:
    qty: int
    earliest_eta: date | None
    next_available: date | None


NOTHING_ON_ORDER = OnOrder(0, None, None)


def incoming(projection: Projection, sku: str) -> list[Incoming]:
    """Open supply of `sku`, soonest first (undated last, then by source id)."""
    found: list[Incoming] = []
    if projection.use_containers:
        for container_id in projection.containers_by_sku.get(sku, ()):
            container = projection.containers[container_id]
            qty = container.lines.get(sku, 0)
            if qty > 0:
                found.append(Incoming(container_id, qty, container.eta))
    else:
        for po_id in projection.pos_by_sku.get(sku, ()):
            for line in projection.purchase_orders[po_id]:
                if line.sku == sku and line.open_qty > 0:
                    found.append(Incoming(po_id, line.open_qty, line.eta))
    found.sort(key=_soonest)
    return found


def on_order(supply: list[Incoming], backorder: int) -> OnOrder:
    """Totals and dates of `supply` (as `incoming` orders it) for a SKU with `backorder`
    units already promised."""
    if not supply:
        return NOTHING_ON_ORDER
    total = sum(item.qty for item in supply)
    dated = [item.eta for item in supply if item.eta is not None]
    next_available = None
    cumulative = 0
    for item in supply:
        cumulative += item.qty
        if cumulative > backorder:
            next_available = item.eta
            break
    return OnOrder(total, min(dated) if dated else None, next_available)


def _soonest(item: Incoming) -> tuple:
    return (item.eta is None, item.eta or date.min, item.source)
