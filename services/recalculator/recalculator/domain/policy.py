"""The settings-dependent rules: which lines take part, which pool they draw from, in what
order they are served, and how much a pool holds (rules §3–§5). Pure functions."""

from __future__ import annotations

from collections.abc import Mapping

from backorder_events import BackorderSettings

from .model import DAY_US, Line, Order

SELLABLE = "Sellable"
UNCALCULABLE_WAREHOUSES = frozenset({"FBA", "Interim", "Untested"})
_UNPAID_LIKE = frozenset({"Unpaid", "Uncleared", "PartiallyPaid"})

# Settings whose change reshapes pools, keys or eligibility; any other setting can change
# without touching allocation state.
ALLOCATION_SETTINGS = frozenset(
    {
        "max_days_to_be_back",
        "use_payment_date",
        "warehouse_based",
        "default_warehouse_id",
        "exclude_dropship_qty",
        "exclude_unsellable_qty",
        "include_authorized",
        "include_on_hold",
        "include_unpaid_and_partially_paid",
        "prioritize_fully_shippable",
        "prioritize_rush",
        "prioritize_picked",
        "consider_replacement_sku_qty",
    }
)


def status_eligible(settings: BackorderSettings, order: Order) -> bool:
    """Rules §4, the order and payment status part."""
    status = order.order_status
    if status != "InProcess" and not (status == "OnHold" and settings.include_on_hold):
        return False
    payment = order.payment_status
    if payment == "Charged":
        return True
    if payment == "Authorized":
        return settings.include_authorized
    if payment in _UNPAID_LIKE:
        return settings.include_unpaid_and_partially_paid
    return False  # refunded and errored payments are never calculated


def order_warehouse(settings: BackorderSettings, order: Order) -> str | None:
    return order.ship_from_warehouse_id or settings.default_warehouse_id


def pool_warehouse(
    settings: BackorderSettings, warehouse_types: Mapping[str, str], order: Order
) -> tuple[bool, str | None]:
    """(calculated, warehouse of the pool). The warehouse is None in the default mode, where
    a SKU has one pool over all its warehouses."""
    if not status_eligible(settings, order):
        return False, None
    if not settings.warehouse_based:
        return True, None
    warehouse = order_warehouse(settings, order)
    if warehouse is None or warehouse_types.get(warehouse, SELLABLE) in UNCALCULABLE_WAREHOUSES:
        return False, None
    return True, warehouse


def priority_key(settings: BackorderSettings, order: Order, line: Line) -> tuple:
    """Rules §5 as a flat tuple: smaller is served first. Order and line ids make it unique."""
    picked = 0 if not settings.prioritize_picked or order.picked else 1
    rush = 0 if not settings.prioritize_rush or order.rush else 1
    if settings.use_payment_date and order.payment_date is not None:
        dated = (0, order.payment_date)
    elif settings.use_payment_date:
        dated = (1, order.order_date)
    else:
        dated = (0, order.order_date)
    return (picked, rush, dated[0], dated[1], order.order_id, line.line_id)


def counts_as_supply(settings: BackorderSettings, warehouse_type: str) -> bool:
    if warehouse_type == "Dropship":
        return not settings.exclude_dropship_qty
    if warehouse_type == "Unsellable":
        return not settings.exclude_unsellable_qty
    return True


def pool_supply(
    settings: BackorderSettings,
    warehouse_types: Mapping[str, str],
    stock: Mapping[str, int] | None,
    warehouse_id: str | None,
) -> int:
    """Rules §3. `stock` maps warehouse → physical quantity of one SKU."""
    if not stock:
        return 0
    if warehouse_id is not None:
        qty = stock.get(warehouse_id, 0)
        kind = warehouse_types.get(warehouse_id, SELLABLE)
        return max(0, qty) if counts_as_supply(settings, kind) else 0
    total = 0
    for warehouse, qty in stock.items():
        if counts_as_supply(settings, warehouse_types.get(warehouse, SELLABLE)):
            total += qty
    return max(0, total)


def supply_warehouses(
    settings: BackorderSettings,
    warehouse_types: Mapping[str, str],
    stock: Mapping[str, int] | None,
) -> list[str | None]:
    """The pools whose unallocated supply makes a SKU's available quantity: its one pool in
    the default mode; in warehouse mode, each warehouse stocking it from which orders are
    calculated (FBA, Interim and Untested stock sells elsewhere)."""
    if not settings.warehouse_based:
        return [None]
    if not stock:
        return []
    return sorted(
        w for w in stock if warehouse_types.get(w, SELLABLE) not in UNCALCULABLE_WAREHOUSES
    )


def frozen_cutoff(settings: BackorderSettings, now: int) -> int | None:
    """Lines of orders dated strictly before the cutoff are frozen (rules §4)."""
    if settings.max_days_to_be_back is None:
        return None
    return now - settings.max_days_to_be_back * DAY_US
