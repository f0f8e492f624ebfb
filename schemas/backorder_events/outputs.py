"""Output events published by the recalculator, and the dead-letter record."""

from __future__ import annotations

import codecs
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    UtcDatetime,
)
from .invalid import InvalidEvent
from .limits import MAX_DEAD_LETTER_RAW_BYTES, MAX_DEAD_LETTER_TEXT, MAX_ID_LENGTH


class BackorderLine(DataModel):
    line_id: Id
    sku: Sku
    qty: PositiveQty
    backorder_qty: NonNegativeQty
    previous_backorder_qty: NonNegativeQty
    expected_date: UtcDatetime | None = None  # docs/behaviour.md, "Expected date per line"
    previous_expected_date: UtcDatetime | None = None


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
    """An input that was not applied, with why and where it came from. Always storable and
    publishable: raw is escaped when the input held NUL or bytes that are not UTF-8, and cut
    when the input was large; the other texts are escaped and cut likewise."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    raw: str = Field(description=(
        "The input as received, as UTF-8 text. With raw_escaped, backslash-escaped: \\\\ for "
        "a backslash, \\x00 for NUL, \\xNN for each byte that is not UTF-8. With raw_size, "
        f"only its first {MAX_DEAD_LETTER_RAW_BYTES} bytes."
    ))
    raw_escaped: bool = Field(default=False, description=(
        "raw is backslash-escaped (the input held NUL or bytes that are not UTF-8)"
    ))
    raw_size: int | None = Field(default=None, description=(
        "The input's size in bytes when raw holds only its beginning; null when raw is whole"
    ))
    reason: str = Field(max_length=MAX_DEAD_LETTER_TEXT)
    source: str = Field(
        max_length=MAX_DEAD_LETTER_TEXT,
        description="Where the input came from, e.g. a file name or topic",
    )
    position: int | None = Field(default=None, description="Line number or offset")
    partition: int | None = None
    event_id: str | None = Field(default=None, max_length=MAX_ID_LENGTH)
    event_type: str | None = Field(default=None, max_length=MAX_ID_LENGTH)

    @model_validator(mode="before")
    @classmethod
    def _storable_raw(cls, data: Any) -> Any:
        # A record read back (raw_escaped true) is stored text already; anything else is made
        # storable, which leaves text that already is (the common case) as it is.
        if isinstance(data, dict) and not data.get("raw_escaped"):
            raw = data.get("raw")
            if raw is None or isinstance(raw, (str, bytes, bytearray, memoryview)):
                text, escaped, size = storable_raw(raw)
                data = {**data, "raw": text, "raw_escaped": escaped,
                        "raw_size": size if size is not None else data.get("raw_size")}
        return data

    @field_validator("reason", "source", mode="before")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        return storable_text(value, MAX_DEAD_LETTER_TEXT)

    @field_validator("event_id", "event_type", mode="before")
    @classmethod
    def _storable_id(cls, value: Any) -> Any:
        return storable_text(value, MAX_ID_LENGTH)

    def original(self) -> bytes:
        """The input's bytes (its first bytes when it was truncated, see raw_size)."""
        if self.raw_escaped:
            return codecs.escape_decode(self.raw.encode())[0]
        return self.raw.encode()

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


# What PostgreSQL text cannot hold: NUL, and lone surrogates (a str that is not UTF-8; bytes
# decoded with surrogateescape hold one for each byte that is not UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_ESCAPED = re.compile("[\\\\\x00\ud800-\udfff]")


def _escape(match: re.Match) -> str:
    char = match.group()
    if char == "\\":
        return "\\\\"
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, from surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    if code == 0:
        return "\\x00"
    return f"\\u{code:04x}"  # a lone surrogate of a str (not reached from bytes)


def storable_raw(raw: str | bytes | bytearray | memoryview | None) -> tuple[str, bool, int | None]:
    """A raw input as text PostgreSQL and Kafka take: (text, escaped, size).

    Text that is UTF-8 and has no NUL comes back as it is. Otherwise the text is
    backslash-escaped (escaped is true): a backslash becomes two, NUL and each byte that is
    not UTF-8 become \\xNN, so `DeadLetter.original()` gives the bytes back. An input above
    MAX_DEAD_LETTER_RAW_BYTES keeps only its first bytes (a character cut in two is left
    out), and size is its whole size in bytes; otherwise size is None."""
    if raw is None:
        data = b""
    elif isinstance(raw, str):
        data = raw.encode("utf-8", "surrogatepass")
    else:
        data = bytes(raw)
    size = len(data)
    truncated = size > MAX_DEAD_LETTER_RAW_BYTES
    if truncated:
        decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        text = decoder.decode(data[:MAX_DEAD_LETTER_RAW_BYTES], final=False)
    else:
        text = data.decode("utf-8", "surrogateescape")
    escaped = _UNSTORABLE.search(text) is not None
    if escaped:
        text = _ESCAPED.sub(_escape, text)
    return text, escaped, size if truncated else None


def storable_text(value: Any, limit: int) -> Any:
    """A short text field of a dead letter made storable: NUL and lone surrogates written as
    escapes, and cut to `limit` characters (the last one then "…"). Not reversible: these
    fields describe the input, `raw` is the input."""
    if not isinstance(value, str):
        return value
    if _UNSTORABLE.search(value):
        value = _UNSTORABLE.sub(lambda m: f"\\x{ord(m.group()):02x}" if m.group() == "\x00"
                                else f"\\u{ord(m.group()):04x}", value)
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return value
