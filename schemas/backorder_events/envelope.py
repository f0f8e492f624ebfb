"""The CloudEvents 1.0 envelope and the scalar types shared by every event."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, timezone
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

NonEmptyStr = Annotated[str, Field(min_length=1)]

# Quantities are JSON integers: strict, so 1.5, "2" and true are rejected.
PositiveQty = Annotated[StrictInt, Field(gt=0)]
NonNegativeQty = Annotated[StrictInt, Field(ge=0)]

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


def _to_utc(value: datetime) -> datetime:
    offset = value.utcoffset()
    if offset:
        return value.astimezone(timezone.utc)
    if value.tzinfo is timezone.utc:
        return value
    return value.replace(tzinfo=timezone.utc)  # naive, or "Z" parsed into another UTC tzinfo


# A non-empty string id; JSON integers are accepted and converted (order_id 5145827).
Id = Annotated[
    str,
    Field(min_length=1),
    BeforeValidator(_id),
    WithJsonSchema({"anyOf": [{"type": "string", "minLength": 1}, {"type": "integer"}]}),
]

# RFC 3339 timestamp, normalised to aware UTC; a naive timestamp is taken as UTC.
UtcDatetime = Annotated[datetime, BeforeValidator(_rfc3339), AfterValidator(_to_utc)]

# Same, also accepting a plain date ("2025-05-01") as midnight UTC.
UtcDatetimeOrDate = Annotated[
    datetime,
    BeforeValidator(_rfc3339_or_date),
    AfterValidator(_to_utc),
    WithJsonSchema({"anyOf": [
        {"type": "string", "format": "date-time"},
        {"type": "string", "format": "date"},
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


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 event in structured JSON mode."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    # The `type` of a concrete event class, read from its `type: Literal[...]`.
    event_type: ClassVar[str | None] = None

    specversion: Literal["1.0"]
    id: NonEmptyStr
    source: NonEmptyStr
    type: str
    time: UtcDatetime
    subject: str | None = None
    datacontenttype: str | None = "application/json"
    data: Any = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        literal = get_args(cls.model_fields["type"].annotation)
        if len(literal) == 1:
            cls.event_type = literal[0]
