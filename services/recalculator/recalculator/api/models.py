"""The API's responses. Times are ISO 8601 in UTC (`…Z`); dates of supply on order are
plain dates, as the channel feeds give them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..domain.explain import LineExplanation


class OrderSummary(BaseModel):
    order_id: str
    company_id: str
    order_date: str
    backorder_status: str = Field(description="the published status: Full, Partial or None")
    backorder_qty: int = Field(description="published backorder summed over the lines")
    qty: int


class OrderPage(BaseModel):
    total: int = Field(description="orders matching the filters, over every page")
    limit: int
    offset: int
    items: list[OrderSummary]


class OrderDetail(BaseModel):
    order_id: str
    company_id: str
    order_date: str
    order_status: str
    payment_status: str
    payment_date: str | None
    rush: bool
    picked: bool
    channel: str | None
    ship_from_warehouse_id: str | None
    backorder_status: str
    backorder_qty: int
    qty: int
    clock: str | None = Field(description="time of the last event applied to the state: the "
                              "explanation is as of then")
    lines: list[LineExplanation] = Field(
        description="each line with its published backorder, its expected dates and why "
        "(what `backorders explain --json` gives)")


class ProductSummary(BaseModel):
    sku: str
    backorder_qty: int = Field(description="total published backorder of the SKU")


class ProductPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[ProductSummary]


class OnOrderView(BaseModel):
    qty: int = Field(description="open quantity of the purchase orders (or containers, with "
                     "use_shipping_containers_for_po) on their way")
    earliest_eta: str | None
    next_available: str | None = Field(
        description="date of the first supply whose cumulative open quantity exceeds the "
        "backordered units, as channel-sync computes it")


class QueueLine(BaseModel):
    place: int = Field(description="1-based place in the pool's priority queue")
    order_id: str
    line_id: str
    qty: int
    allocated: int = Field(description="units the live allocation gives it now")
    backorder: int = Field(description="its published backorder")
    expected_date: str | None


class PoolView(BaseModel):
    warehouse_id: str | None = Field(description="null: one pool over the SKU's sellable warehouses")
    supply: int
    held_by_frozen: int
    available: int
    queue_length: int
    queue: list[QueueLine] = Field(description="the first `queue_limit` lines, in priority order")


class SkuPosition(BaseModel):
    sku: str
    name: str | None
    replacement_sku: str | None
    stock: dict[str, int] = Field(description="physical quantity per warehouse")
    available: int = Field(description="supply no line holds now")
    backordered: int = Field(description="total published backorder")
    published_available: int | None = Field(
        description="available in the last SkuPositionChanged published for it")
    on_order: OnOrderView
    clock: str | None
    pools: list[PoolView]


class Problem(BaseModel):
    """A refused request (4xx) or a database that does not answer (503)."""

    detail: str = Field(description="what is wrong, in one line")
    errors: list[dict] | None = Field(None, description="each invalid parameter (422 only)")
