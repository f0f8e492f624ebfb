"""Output events published by the recalculator, and the dead-letter record."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .codes import BackorderStatus
from .envelope import (
    CloudEvent,
    DataModel,
    EventId,
    Id,
    NonNegativeQty,
    NonNegativeTotal,
    PositiveQty,
    Sku,
)

if TYPE_CHECKING:
    from .parse import InvalidEvent


class BackorderLine(DataModel):
    line_id: Id
    sku: Sku
    qty: PositiveQty
    backorder_qty: NonNegativeQty
    previous_backorder_qty: NonNegativeQty


class BackorderChangedData(DataModel):
    order_id: Id
    company_id: Id
    status: BackorderStatus
    previous_status: BackorderStatus
    reason: Literal["recalculation", "manual"]
    cause_id: EventId  # id of the event that caused the change
    lines: list[BackorderLine]


class ProductBackorderChangedData(DataModel):
    sku: Sku
    backorder_qty: NonNegativeTotal  # total over the SKU's lines
    previous_backorder_qty: NonNegativeTotal


class SkuPositionChangedData(DataModel):
    """What channel feeds need from the recalculator about one SKU (see docs/behaviour.md)."""

    sku: Sku
    available_qty: NonNegativeTotal  # supply no line holds, summed over the SKU's pools
    backorder_qty: NonNegativeTotal  # total published backorder over the SKU's lines
    previous_available_qty: NonNegativeTotal
    previous_backorder_qty: NonNegativeTotal


class BackorderChanged(CloudEvent):
    type: Literal["BackorderChanged"]
    data: BackorderChangedData


class ProductBackorderChanged(CloudEvent):
    type: Literal["ProductBackorderChanged"]
    data: ProductBackorderChangedData


class SkuPositionChanged(CloudEvent):
    type: Literal["SkuPositionChanged"]
    data: SkuPositionChangedData


OUTPUT_EVENT_TYPES: dict[str, type[CloudEvent]] = {
    "BackorderChanged": BackorderChanged,
    "ProductBackorderChanged": ProductBackorderChanged,
    "SkuPositionChanged": SkuPositionChanged,
}


class DeadLetter(BaseModel):
    """An input that was not applied, with why and where it came from."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    raw: str = Field(description="The input exactly as received (UTF-8, errors replaced)")
    reason: str
    source: str = Field(description="Where the input came from, e.g. a file name or topic")
    position: int | None = Field(default=None, description="Line number or offset")
    partition: int | None = None
    event_id: str | None = None
    event_type: str | None = None

    @field_validator("raw", mode="before")
    @classmethod
    def _decode(cls, raw: Any) -> Any:
        if isinstance(raw, (bytes, bytearray, memoryview)):
            return bytes(raw).decode("utf-8", errors="replace")
        return raw

    @classmethod
    def from_error(
        cls,
        raw: str | bytes,
        error: InvalidEvent,
        source: str,
        position: int | None = None,
        partition: int | None = None,
    ) -> DeadLetter:
        return cls(
            raw=raw, reason=error.reason, source=source, position=position, partition=partition,
            event_id=error.event_id, event_type=error.event_type,
        )
