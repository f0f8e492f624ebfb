"""The seed's two backorder searches as queries over the state tables, shared by `backorders
search` and the HTTP API: orders by published backorder status (and company, SKU, order
date), products by total published backorder quantity."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, cast, exists, func, select, true
from sqlalchemy.dialects.postgresql import JSONB

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


def _order_condition(dialect: str, f: OrderFilter):
    c = t.orders.c
    parts = []
    if f.backorder is not None:
        parts.append(c.backorder_status.in_(ORDER_FILTERS[f.backorder]))
    if f.company_id is not None:
        parts.append(c.company_id == f.company_id)
    if f.placed_from is not None:
        parts.append(c.order_date >= f.placed_from)
    if f.placed_to is not None:
        parts.append(c.order_date <= f.placed_to)
    if f.sku is not None:
        parts.append(_has_line_of(dialect, f.sku))
    return and_(true(), *parts)


def _has_line_of(dialect: str, sku: str):
    """The order's document holds a line of `sku` (lines are stored as arrays, the SKU
    second: adapters/codec.py)."""
    if dialect == "postgresql":
        lines = func.jsonb_array_elements(
            cast(t.orders.c.doc, JSONB).op("->")("lines")
        ).table_valued("value").alias("line")
        return exists(select(1).select_from(lines).where(lines.c.value.op("->>")(1) == sku))
    lines = func.json_each(t.orders.c.doc, "$.lines").table_valued("value").alias("line")
    return exists(select(1).select_from(lines).where(func.json_extract(lines.c.value, "$[1]") == sku))


def order_query(dialect: str, f: OrderFilter, sort: str = "order_date", descending: bool = False,
                limit: int | None = None, offset: int = 0):
    """The orders matching `f`, sorted by `sort` (one of ORDER_SORTS) then order id."""
    column = t.orders.c[sort]
    order_by = [column.desc() if descending else column]
    if sort != "order_id":
        order_by.append(t.orders.c.order_id.desc() if descending else t.orders.c.order_id)
    query = select(*ORDER_COLUMNS).where(_order_condition(dialect, f)).order_by(*order_by)
    if limit:
        query = query.limit(limit)
    return query.offset(offset) if offset else query


def order_count(dialect: str, f: OrderFilter):
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
