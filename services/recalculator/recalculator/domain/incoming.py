"""Supply on its way to each SKU: open purchase-order lines and shipping containers, kept
per SKU so that a SKU shard holds only its own (docs/behaviour.md, "Expected date per line").

The same reading as channel-sync's projection, for events applied in time order:
- `PurchaseOrderUpdated` is a PO's full state at its time: each line's open quantity is
  `qty_ordered - qty_received`, expected on its `estimated_delivery_date`. An update older
  than the one held is ignored.
- `POReceived` lowers the open quantity of the PO's lines of each SKU, soonest expected
  first, when it is later than the update held (an earlier one is in its `qty_received`); a
  receipt for a PO not heard of changes no supply.
- `ContainerUpdated` is what is still on the way in a container, with its arrival date.
- `use_shipping_containers_for_po` chooses which of the two is the SKU's incoming supply.

Times and dates are µs since the epoch (a plain date is its midnight UTC). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

UNDATED = 1 << 62  # sorts after every date


@dataclass(slots=True)
class PoLines:
    """One PO's lines of one SKU: the time of the update held, and [open qty, date] each."""

    updated_at: int
    lines: list[list]  # [open, eta µs | None], in the PO's order


@dataclass(slots=True)
class SkuIncoming:
    pos: dict[str, PoLines] = field(default_factory=dict)
    containers: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # id → (qty, eta)

    def empty(self) -> bool:
        return not self.pos and not self.containers


def receive(po: PoLines, qty: int) -> None:
    """A receipt of `qty` units: the lines expected soonest take it first (undated last)."""
    for entry in sorted(po.lines, key=lambda e: UNDATED if e[1] is None else e[1]):
        take = min(qty, entry[0])
        entry[0] -= take
        qty -= take
        if not qty:
            return


def arrivals(incoming: SkuIncoming | None, use_containers: bool) -> list[tuple[int, int]]:
    """The dated open supply of a SKU as (date, qty), soonest first, ties by PO or container
    id. Supply without a date is left out: it would come after every dated arrival, and it
    tells no date."""
    if incoming is None:
        return []
    found: list[tuple[int, str, int, int]] = []
    if use_containers:
        for container_id, (qty, eta) in incoming.containers.items():
            if qty > 0 and eta is not None:
                found.append((eta, container_id, 0, qty))
    else:
        for po_id, po in incoming.pos.items():
            for index, (qty, eta) in enumerate(po.lines):
                if qty > 0 and eta is not None:
                    found.append((eta, po_id, index, qty))
    found.sort()
    return [(eta, qty) for eta, _, _, qty in found]


@dataclass(frozen=True, slots=True)
class OnOrder:
    """A SKU's open supply as channel-sync's feeds tell it (channel_sync/domain/supply.py):
    the quantity on order, its soonest date, and `next_available`, the date of the first
    supply, soonest first (undated last, then by PO or container id), whose cumulative open
    quantity exceeds the units already backordered (None when it does not or has no date)."""

    qty: int
    earliest_eta: int | None  # µs
    next_available: int | None  # µs


def on_order(incoming: SkuIncoming | None, use_containers: bool, backorder: int) -> OnOrder:
    found: list[tuple[bool, int, str, int, int | None]] = []
    if incoming is not None:
        if use_containers:
            for container_id, (qty, eta) in incoming.containers.items():
                if qty > 0:
                    found.append((eta is None, eta or 0, container_id, qty, eta))
        else:
            for po_id, po in incoming.pos.items():
                for qty, eta in po.lines:
                    if qty > 0:
                        found.append((eta is None, eta or 0, po_id, qty, eta))
    found.sort(key=lambda item: item[:3])
    dated = [item[4] for item in found if item[4] is not None]
    next_available, cumulative = None, 0
    for *_, qty, eta in found:
        cumulative += qty
        if cumulative > backorder:
            next_available = eta
            break
    return OnOrder(sum(item[3] for item in found), min(dated) if dated else None, next_available)
