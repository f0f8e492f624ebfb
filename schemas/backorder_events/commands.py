"""Commands: the seed's Manage Orders actions and the periodic recalculation run."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .envelope import CloudEvent, DataModel, Id, NonNegativeQty, Sku, ensure_unique
from .limits import MAX_COMMAND_ITEMS, MAX_ORDER_LINES


class RecalculateBackordersData(DataModel):
    """Both lists empty: recalculate everything."""

    order_ids: list[Id] = Field(default_factory=list, max_length=MAX_COMMAND_ITEMS)
    skus: list[Sku] = Field(default_factory=list, max_length=MAX_COMMAND_ITEMS)


class ReallocateLine(DataModel):
    line_id: Id
    backorder_qty: NonNegativeQty  # <= the line's qty is checked by the consumer


class ReallocateBackorderData(DataModel):
    order_id: Id
    lines: list[ReallocateLine] = Field(min_length=1, max_length=MAX_ORDER_LINES)

    @field_validator("lines")
    @classmethod
    def _unique_lines(cls, lines: list[ReallocateLine]) -> list[ReallocateLine]:
        ensure_unique((line.line_id for line in lines), "line_id")
        return lines


class MarkBackorderData(DataModel):
    order_ids: list[Id] = Field(min_length=1, max_length=MAX_COMMAND_ITEMS)


class MarkNotBackorderData(DataModel):
    order_ids: list[Id] = Field(min_length=1, max_length=MAX_COMMAND_ITEMS)


class RecalculateBackorders(CloudEvent):
    type: Literal["RecalculateBackorders"]
    data: RecalculateBackordersData


class ReallocateBackorder(CloudEvent):
    type: Literal["ReallocateBackorder"]
    data: ReallocateBackorderData


class MarkBackorder(CloudEvent):
    type: Literal["MarkBackorder"]
    data: MarkBackorderData


class MarkNotBackorder(CloudEvent):
    type: Literal["MarkNotBackorder"]
    data: MarkNotBackorderData
