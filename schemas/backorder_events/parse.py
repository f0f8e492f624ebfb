"""Parsing raw input messages into typed events, with one-line reasons for rejects."""

from __future__ import annotations

import json
from typing import Annotated, Any, Union, get_args

from pydantic import Field, TypeAdapter, ValidationError

from .commands import MarkBackorder, MarkNotBackorder, ReallocateBackorder, RecalculateBackorders
from .envelope import CloudEvent
from .inputs import (
    ContainerUpdated,
    InventoryAdjusted,
    ItemAdded,
    ItemReplaced,
    OrderCreated,
    OrderSplit,
    OrderStatusChanged,
    POReceived,
    ProductUpserted,
    PurchaseOrderUpdated,
    SettingsChanged,
    WarehouseUpserted,
)

InputEvent = Annotated[
    Union[
        OrderCreated,
        OrderSplit,
        ItemAdded,
        ItemReplaced,
        OrderStatusChanged,
        POReceived,
        InventoryAdjusted,
        WarehouseUpserted,
        ProductUpserted,
        SettingsChanged,
        PurchaseOrderUpdated,
        ContainerUpdated,
        RecalculateBackorders,
        ReallocateBackorder,
        MarkBackorder,
        MarkNotBackorder,
    ],
    Field(discriminator="type"),
]

INPUT_EVENT_TYPES: dict[str, type[CloudEvent]] = {
    cls.event_type: cls for cls in get_args(get_args(InputEvent)[0])
}

_ADAPTER: TypeAdapter[Any] = TypeAdapter(InputEvent)
_MAX_ERRORS = 5


class InvalidEvent(ValueError):
    """A message that is not a valid input event; `reason` is one readable line."""

    def __init__(self, reason: str, event_id: str | None = None, event_type: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id
        self.event_type = event_type


def parse_event(raw: str | bytes) -> InputEvent:
    """Validate one JSON message; raises InvalidEvent."""
    try:
        return _ADAPTER.validate_json(raw)
    except ValidationError as exc:
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError):  # ValueError includes bad UTF-8
            obj = None
        raise _invalid(exc, obj) from None


def parse_event_obj(obj: dict[str, Any]) -> InputEvent:
    """Validate an already decoded message; raises InvalidEvent."""
    try:
        return _ADAPTER.validate_python(obj)
    except ValidationError as exc:
        raise _invalid(exc, obj) from None


def _invalid(exc: ValidationError, obj: Any) -> InvalidEvent:
    event_id = event_type = None
    if isinstance(obj, dict):
        raw_id, raw_type = obj.get("id"), obj.get("type")
        if isinstance(raw_id, str) or type(raw_id) is int:
            event_id = str(raw_id)
        if isinstance(raw_type, str):
            event_type = raw_type
    return InvalidEvent(_reason(exc, obj), event_id, event_type)


def _reason(exc: ValidationError, obj: Any) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    kind = first["type"]
    if kind == "json_invalid":
        return f"not valid JSON: {first.get('ctx', {}).get('error', first['msg'])}"
    if kind in ("dict_type", "model_attributes_type") and not first["loc"]:
        return "not a JSON object"
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        tag = obj.get("type") if isinstance(obj, dict) else None
        if tag is None:
            return "missing event type"
        if not isinstance(tag, str):
            return f"event type must be a string, got {json.dumps(tag, default=repr)[:50]}"
        return f"unknown event type {tag[:100]!r} (expected one of {', '.join(INPUT_EVENT_TYPES)})"

    event_type = first["loc"][0]
    if any(err["loc"][1:] == ("specversion",) for err in errors):
        return "specversion must be '1.0'"
    parts = [f"{_path(err['loc'][1:])}: {err['msg']}" for err in errors[:_MAX_ERRORS]]
    if len(errors) > _MAX_ERRORS:
        parts.append(f"and {len(errors) - _MAX_ERRORS} more errors")
    return f"{event_type}: {'; '.join(parts)}"


def _path(loc: tuple[int | str, ...]) -> str:
    """('data', 'lines', 0, 'qty') -> 'data.lines[0].qty'"""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or "(event)"
