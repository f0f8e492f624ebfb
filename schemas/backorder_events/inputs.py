"""Input events: what producers tell the recalculator (events.md, Inputs)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .codes import OrderStatus, OrderStatusField, PaymentStatus, PaymentStatusField, WarehouseType
from .envelope import (
    CloudEvent,
    DataModel,
    Id,
    NonNegativeQty,
    OnlySetFields,
    PositiveQty,
    Sku,
    StockQty,
    Text,
    UnitPrice,
    UtcDatetime,
    UtcDatetimeOrDate,
    absent,
    ensure_unique,
)
from .limits import MAX_DOCUMENT_LINES, MAX_ORDER_LINES
from .settings import SettingsPatch


class OrderLine(DataModel):
    line_id: Id
    sku: Sku
    qty: PositiveQty
    unit_price: UnitPrice | None = None
    name: Text | None = None


class Address(DataModel):
    name: Text | None = None
    company: Text | None = None
    street1: Text | None = None
    street2: Text | None = None
    city: Text | None = None
    state: Text | None = None
    postal_code: Text | None = None
    country: Text | None = None
    phone: Text | None = None


class Customer(DataModel):
    email: Text | None = None
    first_name: Text | None = None
    last_name: Text | None = None
    shipping_address: Address | None = None


class OrderCreatedData(DataModel):
    order_id: Id
    order_date: UtcDatetime
    order_status: OrderStatusField = OrderStatus.InProcess
    payment_status: PaymentStatusField = PaymentStatus.Unpaid
    payment_date: UtcDatetime | None = None
    rush: bool = False
    picked: bool = False
    ship_from_warehouse_id: Id | None = None
    company_id: Id = "default"
    channel: Text | None = None
    customer: Customer | None = None
    lines: list[OrderLine] = Field(min_length=1, max_length=MAX_ORDER_LINES)

    @field_validator("lines")
    @classmethod
    def _unique_lines(cls, lines: list[OrderLine]) -> list[OrderLine]:
        ensure_unique((line.line_id for line in lines), "line_id")
        return lines


class SplitLine(DataModel):
    line_id: Id
    qty: PositiveQty
    new_line_id: Id


class OrderSplitData(DataModel):
    order_id: Id
    new_order_id: Id
    lines: list[SplitLine] = Field(min_length=1, max_length=MAX_ORDER_LINES)

    @field_validator("lines")
    @classmethod
    def _unique_lines(cls, lines: list[SplitLine]) -> list[SplitLine]:
        ensure_unique((line.line_id for line in lines), "line_id")
        ensure_unique((line.new_line_id for line in lines), "new_line_id")
        return lines

    @model_validator(mode="after")
    def _new_order_differs(self) -> OrderSplitData:
        if self.new_order_id == self.order_id:
            raise PydanticCustomError("same_order", "new_order_id must differ from order_id")
        return self


class ItemAddedData(DataModel):
    order_id: Id
    line: OrderLine


class ItemReplacedData(DataModel):
    order_id: Id
    line_id: Id
    new_sku: Sku
    qty: PositiveQty | None = None  # null keeps the line's quantity


STATUS_CHANGE_FIELDS = (
    "order_status", "payment_status", "payment_date", "rush", "picked", "ship_from_warehouse_id",
)


class OrderStatusChangedData(DataModel, OnlySetFields):
    """Only the fields present change: use `model_fields_set` to tell absent from null."""

    order_id: Id
    order_status: OrderStatusField = absent()
    payment_status: PaymentStatusField = absent()
    payment_date: UtcDatetime | None = absent()  # explicit null clears it
    rush: bool = absent()
    picked: bool = absent()
    ship_from_warehouse_id: Id | None = absent()  # explicit null clears it

    @model_validator(mode="after")
    def _something_changes(self) -> OrderStatusChangedData:
        if self.model_fields_set.isdisjoint(STATUS_CHANGE_FIELDS):
            raise PydanticCustomError(
                "nothing_changed", "at least one of {fields} must be present",
                {"fields": ", ".join(STATUS_CHANGE_FIELDS)},
            )
        return self


class SkuQty(DataModel):
    sku: Sku
    qty: PositiveQty


class POReceivedData(DataModel):
    po_id: Id
    warehouse_id: Id
    lines: list[SkuQty] = Field(min_length=1, max_length=MAX_DOCUMENT_LINES)


class InventoryAdjustedData(DataModel):
    sku: Sku
    warehouse_id: Id
    delta: StockQty | None = None  # may be negative, as may physical stock
    set_to: StockQty | None = None
    recalculate: bool = False

    @model_validator(mode="after")
    def _delta_xor_set_to(self) -> InventoryAdjustedData:
        if (self.delta is None) == (self.set_to is None):
            raise PydanticCustomError(
                "delta_xor_set_to", "exactly one of delta / set_to is required"
            )
        return self


class WarehouseUpsertedData(DataModel):
    warehouse_id: Id
    type: WarehouseType
    name: Text | None = None


class ProductUpsertedData(DataModel):
    sku: Sku
    replacement_sku: Sku | None = None
    name: Text | None = None

    @model_validator(mode="after")
    def _not_own_replacement(self) -> ProductUpsertedData:
        if self.replacement_sku == self.sku:
            raise PydanticCustomError("own_replacement", "replacement_sku must differ from sku")
        return self


class SettingsChangedData(DataModel):
    settings: SettingsPatch


class POLine(DataModel):
    sku: Sku
    qty_ordered: PositiveQty
    qty_received: NonNegativeQty = 0
    estimated_delivery_date: UtcDatetimeOrDate | None = None


class PurchaseOrderUpdatedData(DataModel):
    po_id: Id
    lines: list[POLine] = Field(min_length=1, max_length=MAX_DOCUMENT_LINES)


class ContainerLine(DataModel):
    sku: Sku
    qty: NonNegativeQty


class ContainerUpdatedData(DataModel):
    container_id: Id
    estimated_arrival_date: UtcDatetimeOrDate | None = None
    lines: list[ContainerLine] = Field(max_length=MAX_DOCUMENT_LINES)  # still on the way; may be empty


class OrderCreated(CloudEvent):
    type: Literal["OrderCreated"]
    data: OrderCreatedData


class OrderSplit(CloudEvent):
    type: Literal["OrderSplit"]
    data: OrderSplitData


class ItemAdded(CloudEvent):
    type: Literal["ItemAdded"]
    data: ItemAddedData


class ItemReplaced(CloudEvent):
    type: Literal["ItemReplaced"]
    data: ItemReplacedData


class OrderStatusChanged(CloudEvent):
    type: Literal["OrderStatusChanged"]
    data: OrderStatusChangedData


class POReceived(CloudEvent):
    type: Literal["POReceived"]
    data: POReceivedData


class InventoryAdjusted(CloudEvent):
    type: Literal["InventoryAdjusted"]
    data: InventoryAdjustedData


class WarehouseUpserted(CloudEvent):
    type: Literal["WarehouseUpserted"]
    data: WarehouseUpsertedData


class ProductUpserted(CloudEvent):
    type: Literal["ProductUpserted"]
    data: ProductUpsertedData


class SettingsChanged(CloudEvent):
    type: Literal["SettingsChanged"]
    data: SettingsChangedData


class PurchaseOrderUpdated(CloudEvent):
    type: Literal["PurchaseOrderUpdated"]
    data: PurchaseOrderUpdatedData


class ContainerUpdated(CloudEvent):
    type: Literal["ContainerUpdated"]
    data: ContainerUpdatedData
