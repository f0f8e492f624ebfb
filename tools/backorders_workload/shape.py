"""How big the generated day is (`WorkloadShape`), its clock, and the targets that
calibrate its stock against its demand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)


class WorkloadShape:
    orders: int = 5000
    skus: int = 300
    warehouses: int = 3  # "WH-MAIN" Sellable, "WH-DROP" Dropship, "WH-RET" Unsellable (extra ones Sellable)
    companies: int = 2
    recalc_every_minutes: int = 30
    bad_events: int = 5  # deliberately invalid inputs (module docstring)


BAD_EVENT_KINDS = ("not-json", "zero-qty", "unknown-order", "unknown-type", "duplicate-id")


KNOWN_TYPES = frozenset(
    {
        "OrderCreated", "OrderSplit", "ItemAdded", "ItemReplaced", "OrderStatusChanged",
        "POReceived", "InventoryAdjusted", "WarehouseUpserted", "ProductUpserted",
        "SettingsChanged", "PurchaseOrderUpdated", "ContainerUpdated",
        "RecalculateBackorders", "ReallocateBackorder", "MarkBackorder", "MarkNotBackorder",
    }
)


DEFAULT_START = datetime(2025, 4, 30, 8, tzinfo=UTC)


DAY_SECONDS = 12 * 3600


FIRST_ORDER_ID = 5145827


TS = "%Y-%m-%dT%H:%M:%SZ"


SHORT_PER_10 = 4  # SKUs in each block of 10 (by demand) that end the day well short


HEAD_TARGET = (0.6, 0.9)  # end-of-day supply / demand of the bestsellers


SHORT_TARGET = (0.0, 0.5)  # ... of the short SKUs below them


SHIPPED_SHARE = 0.15  # of the units a SKU's supply covers, the share that ships today


SHIP_BOOKING_DELAY = (60, 900)  # seconds from an order's Completed to its stock decrements
