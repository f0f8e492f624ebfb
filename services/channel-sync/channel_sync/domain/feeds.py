"""Each channel's feed row for a SKU: a pure function of the projection and the channel's
options. A row is a plain JSON-able dict with the channel's own field names; the last row a
channel accepted is stored, and only rows that differ from it are sent (`changed_rows`).

A SKU gets a row once its position is known (the recalculator published it) and when the
channel lists it; the channel's SKU mapping renames it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from .projection import Projection
from .supply import OnOrder, incoming, on_order

WAYFAIR, OVERSTOCK, MAGENTO = "wayfair", "overstock", "magento"


@dataclass(frozen=True, slots=True)
class SkuFacts:
    """What every channel's row is made of."""

    sku: str
    name: str | None
    available: int
    backorder: int
    on_order: OnOrder


@dataclass(frozen=True)
class ChannelOptions:
    """The parts of a channel's configuration that shape its rows."""

    kind: str
    listed: tuple[str, ...] = ("*",)  # glob patterns of the SKUs listed on the channel
    sku_map: Mapping[str, str] = field(default_factory=dict)  # our SKU → the channel's
    discontinued: frozenset[str] = frozenset()
    supplier_id: int | None = None  # Wayfair
    stock_item_id: int = 1  # Magento
    backorders_value: int = 1  # Magento's `backorders` when backorders are allowed
    send_backorder_tags: bool | None = None  # Magento; None: the client setting decides

    def channel_sku(self, sku: str) -> str | None:
        """The SKU as the channel knows it, or None when the channel does not list it."""
        if not any(fnmatchcase(sku, pattern) for pattern in self.listed):
            return None
        return self.sku_map.get(sku, sku)


def facts(projection: Projection, sku: str) -> SkuFacts | None:
    position = projection.positions.get(sku)
    if position is None:
        return None
    supply = on_order(incoming(projection, sku), position.backorder)
    return SkuFacts(sku, projection.names.get(sku), position.available, position.backorder, supply)


def wayfair_row(f: SkuFacts, options: ChannelOptions, channel_sku: str, projection: Projection) -> dict:
    """One item of Wayfair's inventory mutation. The single date field gets the date a unit
    ordered now becomes available (`next_available`)."""
    eta = f.on_order.next_available
    return {
        "supplierId": options.supplier_id,
        "supplierPartNumber": channel_sku,
        "quantityOnHand": f.available,
        "quantityBackorder": f.backorder,
        "quantityOnOrder": f.on_order.qty,
        "itemNextAvailabilityDate": None if eta is None else eta.strftime("%m-%d-%Y 00:00:00"),
        "discontinued": f.sku in options.discontinued,
        "productNameAndOptions": f.name or f.sku,
    }


def overstock_row(f: SkuFacts, options: ChannelOptions, channel_sku: str, projection: Projection) -> dict:
    """One line of the Overstock inventory feed (docs/channel-sync.md: the CSV columns)."""
    eta = f.on_order.next_available
    return {
        "sku": channel_sku,
        "quantity": f.available,
        "quantityOnOrder": f.on_order.qty,
        "eta": None if eta is None else eta.isoformat(),
    }


def magento_row(f: SkuFacts, options: ChannelOptions, channel_sku: str, projection: Projection) -> dict:
    """Magento 2's stock item. Backorders are allowed while supply on order can serve a new
    buyer (a next-available date exists); the two tags are left out when the seller turned
    them off ("Do Not Send BackOrder Tags To Magento"), and Magento's own configuration
    then decides."""
    send_tags = projection.magento_tags if options.send_backorder_tags is None else options.send_backorder_tags
    allows = f.on_order.next_available is not None
    stock_item: dict = {"qty": f.available, "is_in_stock": f.available > 0 or (send_tags and allows)}
    if send_tags:
        stock_item["backorders"] = options.backorders_value if allows else 0
        stock_item["use_config_backorders"] = False
    return {"sku": channel_sku, "itemId": options.stock_item_id, "stockItem": stock_item}


ROW_BUILDERS = {WAYFAIR: wayfair_row, OVERSTOCK: overstock_row, MAGENTO: magento_row}


def row(projection: Projection, options: ChannelOptions, sku: str) -> dict | None:
    """The channel's row for `sku`, or None when it has no position or is not listed."""
    channel_sku = options.channel_sku(sku)
    if channel_sku is None:
        return None
    f = facts(projection, sku)
    if f is None:
        return None
    return ROW_BUILDERS[options.kind](f, options, channel_sku, projection)


def rows(projection: Projection, options: ChannelOptions, skus: Iterable[str]) -> dict[str, dict | None]:
    return {sku: row(projection, options, sku) for sku in skus}


def canonical(value: dict) -> str:
    """The text a row is stored and compared as."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def changed_rows(
    desired: Mapping[str, dict | None], accepted: Mapping[str, str], refused: Mapping[str, str] | None = None
) -> dict[str, dict]:
    """Rows that differ from the last the channel accepted (`accepted`: sku → canonical
    text), by SKU. A SKU with no row (not listed, no position) sends nothing, and neither
    does a row equal to the one the channel last refused (`refused`: sku → canonical text of
    its latest open refusal): it is sent again only once it changes (or with a full push)."""
    refused = refused or {}
    out = {}
    for sku, value in sorted(desired.items()):
        if value is None:
            continue
        text = canonical(value)
        if accepted.get(sku) != text and refused.get(sku) != text:
            out[sku] = value
    return out
