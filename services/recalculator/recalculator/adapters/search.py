"""The seed's two backorder searches as queries over the state tables, shared by `backorders
search` and the HTTP API: orders by published backorder status (and company, SKU, order
date), products by total published backorder quantity.

Every filter has an index (adapters/tables.py): a page by status in order-date order is read
from the status index alone, stopping at the page's end; a filter of several statuses merges
such reads, one per status. Other sorts sort the matches."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, func, select, true, union_all

from . import tables as t

# The seed's order filters (rules §7).
ORDER_FILTERS = {
    "full": ("Full",),
    "partial": ("Partial",),
    "full-or-partial": ("Full", "Partial"),
    "none": ("None",),
    "not-full": ("Partial", "None"),
}

ORDER_COLUMNS = (
    t.orders.c.order_id,
    t.orders.c.company_id,
    t.orders.c.order_date,
    t.orders.c.backorder_status,
    t.orders.c.backorder_qty,
    t.orders.c.qty,
)
ORDER_SORTS = ("order_date", "order_id", "company_id", "backorder_qty", "qty")
PRODUCT_SORTS = ("backorder_qty", "sku")


@dataclass(frozen=True)
class OrderFilter:
    backorder: str | None = None  # a key of ORDER_FILTERS
    company_id: str | None = None
    sku: str | None = None  # orders with a line of this SKU
    placed_from: int | None = None  # order_date >= (µs)
    placed_to: int | None = None  # order_date <= (µs)


def _order_condition(dialect: str, f: OrderFilter, statuses: tuple[str, ...] | None = None):
    """`f`'s conditions; `statuses` instead of those of `f.backorder` when given."""
    c = t.orders.c
    parts = []
    statuses = statuses if statuses is not None else ORDER_FILTERS[f.backorder] if f.backorder else None
    if statuses is not None:
        parts.append(c.backorder_status == statuses[0] if len(statuses) == 1 else c.backorder_status.in_(statuses))
    if f.company_id is not None:
        parts.append(c.company_id == f.company_id)
    if f.placed_from is not None:
        parts.append(c.order_date >= f.placed_from)
    if f.placed_to is not None:
        parts.append(c.order_date <= f.placed_to)
    if f.sku is not None:
        parts.append(_has_line_of(dialect, f.sku))
    return and_(true(), *parts)


def _has_line_of(_dialect: str, sku: str):
    """The order has a line of `sku` (order_skus, written with the order)."""
    return t.orders.c.order_id.in_(select(t.order_skus.c.order_id).where(t.order_skus.c.sku == sku))


def _sorting(columns, sort: str, descending: bool) -> list:
    column = columns[sort]
    order_by = [column.desc() if descending else column]
    if sort != "order_id":
        order_by.append(columns.order_id.desc() if descending else columns.order_id)
    return order_by


def order_query(dialect: str, f: OrderFilter, sort: str = "order_date", descending: bool = False,
                limit: int | None = None, offset: int = 0):
    """The orders matching `f`, sorted by `sort` (one of ORDER_SORTS) then order id."""
    statuses = ORDER_FILTERS[f.backorder] if f.backorder else None
    if statuses is not None and len(statuses) > 1:
        # One part per status, each read in order from the status index, merged. SQLite
        # merges the parts of a UNION ALL in order as they are; PostgreSQL (15) does only
        # for parts that are sorted and limited each: a page is among the first offset +
        # limit of each part.
        parts = []
        for status in statuses:
            part = select(*ORDER_COLUMNS).where(_order_condition(dialect, f, (status,)))
            if limit and dialect == "postgresql":
                part = part.order_by(*_sorting(t.orders.c, sort, descending)).limit(offset + limit)
                part = select(*part.subquery(f"status_{len(parts)}").c)
            parts.append(part)
        merged = union_all(*parts).subquery("matching")
        query = select(*merged.c).order_by(*_sorting(merged.c, sort, descending))
    else:
        query = select(*ORDER_COLUMNS).where(_order_condition(dialect, f))
        query = query.order_by(*_sorting(t.orders.c, sort, descending))
    if limit:
        query = query.limit(limit)
    return query.offset(offset) if offset else query


def order_count(dialect: str, f: OrderFilter):
    if f.sku is not None and f == OrderFilter(sku=f.sku):
        # Only a SKU: its rows in order_skus, one per order (written with the orders).
        return select(func.count()).select_from(t.order_skus).where(t.order_skus.c.sku == f.sku)
    return select(func.count()).select_from(t.orders).where(_order_condition(dialect, f))


def _product_condition(low: int, high: int | None):
    condition = t.sku_backorders.c.backorder_qty >= low
    if high is not None:
        condition = and_(condition, t.sku_backorders.c.backorder_qty <= high)
    return condition


def product_query(low: int, high: int | None, sort: str = "backorder_qty", descending: bool = True,
                  limit: int | None = None, offset: int = 0):
    """SKUs whose total published backorder is in [low, high], by `sort` then SKU."""
    column = t.sku_backorders.c[sort]
    order_by = [column.desc() if descending else column]
    if sort != "sku":
        order_by.append(t.sku_backorders.c.sku)
    query = (
        select(t.sku_backorders.c.sku, t.sku_backorders.c.backorder_qty)
        .where(_product_condition(low, high))
        .order_by(*order_by)
    )
    if limit:
        query = query.limit(limit)
    return query.offset(offset) if offset else query


def product_count(low: int, high: int | None):
    return select(func.count()).select_from(t.sku_backorders).where(_product_condition(low, high))
