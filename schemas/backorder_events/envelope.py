"""The CloudEvents 1.0 envelope and the scalar types shared by every event."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictInt,
    WithJsonSchema,
    model_serializer,
)
from pydantic_core import PydanticCustomError

from .limits import (
    EARLIEST_TIME,
    LATEST_TIME,
    MAX_EVENT_BYTES,
    MAX_ID_LENGTH,
    MAX_LINE_QTY,
    MAX_SKU_LENGTH,
    MAX_STOCK_QTY,
    MAX_TEXT_LENGTH,
    MAX_UNIT_PRICE,
    NO_NUL_PATTERN,
)

# Strings. NUL is refused anywhere in a message by `parse_event` (one scan of the raw input,
# not one check per field); the JSON Schema states it per field.
_NO_NUL = {"pattern": NO_NUL_PATTERN}
EventId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, json_schema_extra=_NO_NUL)]
Sku = Annotated[str, Field(min_length=1, max_length=MAX_SKU_LENGTH, json_schema_extra=_NO_NUL)]
Text = Annotated[str, Field(max_length=MAX_TEXT_LENGTH, json_schema_extra=_NO_NUL)]
NonEmptyText = Annotated[
    str, Field(min_length=1, max_length=MAX_TEXT_LENGTH, json_schema_extra=_NO_NUL)
]

# Quantities are JSON integers: strict, so 1.5, "2" and true are rejected.
PositiveQty = Annotated[StrictInt, Field(gt=0, le=MAX_LINE_QTY)]  # a line's quantity
NonNegativeQty = Annotated[StrictInt, Field(ge=0, le=MAX_LINE_QTY)]  # a line's, may be 0
NonNegativeTotal = Annotated[StrictInt, Field(ge=0)]  # a sum over lines (outputs)
StockQty = Annotated[StrictInt, Field(ge=-MAX_STOCK_QTY, le=MAX_STOCK_QTY)]  # may be negative


def _unit_price(value: Decimal | float) -> Decimal | float:
    finite = value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)
    if not finite or not -MAX_UNIT_PRICE <= value <= MAX_UNIT_PRICE:
        raise PydanticCustomError(
            "unit_price", "must be a finite number from {low} to {high}",
            {"low": -MAX_UNIT_PRICE, "high": MAX_UNIT_PRICE},
        )
    return value


# A price as given: a JSON number, or a decimal string that keeps its digits; finite.
UnitPrice = Annotated[
    Decimal | float,
    AfterValidator(_unit_price),
    WithJsonSchema({"anyOf": [
        {"type": "number", "minimum": -MAX_UNIT_PRICE, "maximum": MAX_UNIT_PRICE},
        {"type": "string", "description": "a decimal number, within the same bounds"},
    ]}),
]

_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[Tt ]")
_DATE = re.compile(r"\d{4}-\d\d-\d\d\Z")


def _id(value: Any) -> Any:
    # JSON integers become strings (Sellercloud ids are numbers); a bool is not an int here.
    return str(value) if type(value) is int else value


def _rfc3339(value: Any) -> Any:
    # pydantic alone would also take unix timestamps and bare dates; the contract says RFC 3339.
    if isinstance(value, datetime) or (type(value) is str and _TIMESTAMP.match(value)):
        return value
    raise PydanticCustomError("rfc3339", "Input should be an RFC 3339 timestamp")


def _rfc3339_or_date(value: Any) -> Any:
    if type(value) is str and _DATE.match(value):
        return value  # pydantic reads a bare date as midnight; _to_utc makes it UTC
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    return _rfc3339(value)


_TIME_RANGE = (
    f"must be at or after {EARLIEST_TIME:%Y-%m-%dT%H:%M:%SZ} "
    f"and before {LATEST_TIME:%Y-%m-%dT%H:%M:%SZ}"
)


def _to_utc(value: datetime) -> datetime:
    # The range is checked before converting (0001-01-01T00:00:00+01:00 is in year 0 in UTC:
    # the conversion would overflow); comparing aware datetimes never does.
    offset = value.utcoffset()
    if offset:
        if not EARLIEST_TIME <= value < LATEST_TIME:
            raise PydanticCustomError("time_range", _TIME_RANGE)
        return value.astimezone(timezone.utc)
    if value.tzinfo is not timezone.utc:
        value = value.replace(tzinfo=timezone.utc)  # naive, or "Z" parsed into another UTC tzinfo
    if not EARLIEST_TIME <= value < LATEST_TIME:
        raise PydanticCustomError("time_range", _TIME_RANGE)
    return value


# A non-empty string id; JSON integers are accepted and converted (order_id 5145827).
Id = Annotated[
    str,
    Field(min_length=1, max_length=MAX_ID_LENGTH),
    BeforeValidator(_id),
    WithJsonSchema({"anyOf": [
        {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH, **_NO_NUL},
        {"type": "integer"},
    ]}),
]

# JSON Schema has no standard bound for dates: ajv-formats' keywords, which say it exactly.
_TIME_BOUNDS = {
    "formatMinimum": f"{EARLIEST_TIME:%Y-%m-%dT%H:%M:%SZ}",
    "formatExclusiveMaximum": f"{LATEST_TIME:%Y-%m-%dT%H:%M:%SZ}",
}

# RFC 3339 timestamp, normalised to aware UTC; a naive timestamp is taken as UTC.
UtcDatetime = Annotated[
    datetime,
    BeforeValidator(_rfc3339),
    AfterValidator(_to_utc),
    WithJsonSchema({"type": "string", "format": "date-time", **_TIME_BOUNDS}),
]

# Same, also accepting a plain date ("2025-05-01") as midnight UTC.
UtcDatetimeOrDate = Annotated[
    datetime,
    BeforeValidator(_rfc3339_or_date),
    AfterValidator(_to_utc),
    WithJsonSchema({"anyOf": [
        {"type": "string", "format": "date-time", **_TIME_BOUNDS},
        {"type": "string", "format": "date", **_TIME_BOUNDS},
    ]}),
]


def absent() -> Any:
    """Default for "absent means unchanged" fields (consumers read `model_fields_set`).

    The placeholder None is never validated, so a field annotated without None still
    rejects an explicit null; it is left out of the JSON Schema.
    """
    return Field(default=None, json_schema_extra=_drop_default)


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def ensure_unique(values: Iterable[Any], what: str) -> None:
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise PydanticCustomError(
                "duplicate", "duplicate {what} {value}", {"what": what, "value": repr(value)}
            )
        seen.add(value)


class DataModel(BaseModel):
    """Base of every `data` payload: unknown fields are ignored, instances are immutable."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class OnlySetFields(BaseModel):
    """For models whose absent fields mean "unchanged": dumps only the fields that were set,
    so a dump parses back to the same value."""

    @model_serializer(mode="wrap")
    def _only_set(self, handler: SerializerFunctionWrapHandler) -> Any:
        dumped = handler(self)
        return {k: v for k, v in dumped.items() if k in self.model_fields_set}


_MESSAGE_LIMITS = (
    f"A CloudEvents 1.0 event in structured JSON mode: at most {MAX_EVENT_BYTES} bytes as "
    "sent, with no NUL character (U+0000) anywhere, unknown fields included."
)


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 event in structured JSON mode."""

    model_config = ConfigDict(
        extra="ignore", frozen=True, json_schema_extra={"description": _MESSAGE_LIMITS}
    )

    # The `type` of a concrete event class, read from its `type: Literal[...]`.
    event_type: ClassVar[str | None] = None

    specversion: Literal["1.0"]
    id: EventId
    source: NonEmptyText
    type: str
    time: UtcDatetime
    subject: Text | None = None
    datacontenttype: Text | None = "application/json"
    data: Any = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        literal = get_args(cls.model_fields["type"].annotation)
        if len(literal) == 1:
            cls.event_type = literal[0]
