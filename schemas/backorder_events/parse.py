"""Parsing raw input messages into typed events, with one-line reasons for rejects."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Union, get_args

from pydantic import Field, TypeAdapter, ValidationError

from .commands import MarkBackorder, MarkNotBackorder, ReallocateBackorder, RecalculateBackorders
from .envelope import CloudEvent
from .invalid import InvalidEvent
from .limits import MAX_EVENT_BYTES, MAX_ID_LENGTH, NUL
from .outputs import storable_text
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


def parse_event(raw: str | bytes | None) -> InputEvent:
    """Validate one JSON message; raises InvalidEvent.

    Before any parsing, the message must be at most MAX_EVENT_BYTES and hold no NUL (U+0000)
    anywhere, unknown fields included (see limits.py)."""
    if raw is None:  # a Kafka record without a value
        raise InvalidEvent("empty record: no value")
    if isinstance(raw, (bytearray, memoryview)):
        raw = bytes(raw)
    if type(raw) is bytes:  # the common case (files, Kafka)
        if len(raw) > MAX_EVENT_BYTES:
            check_size(raw)
        if b"\\u0000" in raw:
            _refuse_nul(raw)
    else:
        check_size(raw)
        if "\\u0000" in raw:
            _refuse_nul(raw)
    try:
        return _ADAPTER.validate_json(raw)
    except ValidationError as exc:
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError):  # ValueError includes bad UTF-8
            obj = None
        raise _invalid(exc, obj) from None


def parse_event_obj(obj: dict[str, Any]) -> InputEvent:
    """Validate an already decoded message; raises InvalidEvent. The size of the message it
    was decoded from is for the caller to check (`check_size`); NUL is refused here too."""
    where = _nul_path(obj)
    if where is not None:
        raise _nul_event(obj, where)
    try:
        return _ADAPTER.validate_python(obj)
    except ValidationError as exc:
        raise _invalid(exc, obj) from None


def check_size(raw: str | bytes) -> None:
    """Raise InvalidEvent when a raw message is larger than MAX_EVENT_BYTES."""
    size = _size(raw)
    if size > MAX_EVENT_BYTES:
        raise InvalidEvent(
            f"message of {size} bytes is larger than the limit of {MAX_EVENT_BYTES} bytes"
        )


def _size(raw: str | bytes) -> int:
    if not isinstance(raw, str):
        return len(raw)
    if len(raw) * 4 <= MAX_EVENT_BYTES:  # at most 4 bytes a character: small enough
        return len(raw)
    return len(raw.encode("utf-8", "surrogatepass"))


# NUL in JSON text is either the escape \\u0000 (an odd run of backslashes before "u0000"),
# or a raw NUL byte, which JSON refuses anyway (a control character, or outside a string).
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
_NUL_ESCAPE_BYTES = re.compile(_NUL_ESCAPE.pattern.encode())


def _refuse_nul(raw: str | bytes) -> None:
    """Called when the text \\u0000 is in a message: refuses it when that is a NUL."""
    pattern = _NUL_ESCAPE if isinstance(raw, str) else _NUL_ESCAPE_BYTES
    if pattern.search(raw) is None:
        return  # an escaped backslash followed by the text u0000
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        return  # not JSON: validation says so
    where = _nul_path(obj)
    if where is not None:
        raise _nul_event(obj, where)


def _nul_event(obj: Any, where: str) -> InvalidEvent:
    event_id, event_type = _id_and_type(obj)
    prefix = f"{event_type}: " if event_type in INPUT_EVENT_TYPES else ""
    return InvalidEvent(
        f"{prefix}{where} must not contain a NUL character (U+0000)", event_id, event_type
    )


def _nul_path(obj: Any) -> str | None:
    """Where the first NUL of a decoded message is ('data.customer.first_name:'), or None.
    Iterative: a message may nest deeper than Python's recursion limit."""
    stack: list[tuple[tuple[int | str, ...], Any]] = [((), obj)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, str):
            if NUL in value:
                return f"{_path(loc)}:"
        elif isinstance(value, dict):
            for key, item in reversed(list(value.items())):
                if isinstance(key, str) and NUL in key:
                    return f"{_path(loc)}: the field name {key[:60]!r}"
                stack.append(((*loc, key), item))
        elif isinstance(value, list):
            stack.extend(((*loc, i), item) for i, item in reversed(list(enumerate(value))))
    return None


def _invalid(exc: ValidationError, obj: Any) -> InvalidEvent:
    event_id, event_type = _id_and_type(obj)
    return InvalidEvent(_reason(exc, obj), event_id, event_type)


def _id_and_type(obj: Any) -> tuple[str | None, str | None]:
    """The id and type of a refused message as far as they can be read, made fit to log and
    store (an id beyond its limit is cut, a NUL escaped)."""
    event_id = event_type = None
    if isinstance(obj, dict):
        raw_id, raw_type = obj.get("id"), obj.get("type")
        if isinstance(raw_id, str) or (type(raw_id) is int and raw_id.bit_length() < 1024):
            event_id = storable_text(str(raw_id), MAX_ID_LENGTH)
        if isinstance(raw_type, str):
            event_type = storable_text(raw_type, MAX_ID_LENGTH)
    return event_id, event_type


def _reason(exc: ValidationError, obj: Any) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    kind = first["type"]
    if kind == "json_invalid":
        return f"not valid JSON: {first.get('ctx', {}).get('error', first['msg'])}"
    if kind == "string_unicode" and not first["loc"]:
        return "not valid JSON: not UTF-8 text"
    if kind in ("dict_type", "model_attributes_type") and not first["loc"]:
        return "not a JSON object"
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        tag = obj.get("type") if isinstance(obj, dict) else None
        if tag is None:
            return "missing event type"
        if not isinstance(tag, str):
            return f"event type must be a string, got {json.dumps(tag, default=repr)[:50]}"
        return f"unknown event type {tag[:100]!r} (expected one of {', '.join(INPUT_EVENT_TYPES)})"
    if not first["loc"]:
        return first["msg"]

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
