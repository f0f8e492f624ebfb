"""What a record consumed by the notifier or channel-sync must be before it is parsed and
stored (pure).

A record a service cannot take in is dead-lettered with the reason, never retried and never
allowed to stop the intake: a record that is too large, not UTF-8, not JSON, not a JSON
object, or an event of interest that the contract refuses (whatever its parser raises), and
values that PostgreSQL or the service cannot hold even though the contract lets them
through: a NUL character (PostgreSQL text refuses it), a number beyond 64 bits (a quantity
of 2**70), a string beyond `MAX_TEXT` characters or an identifier beyond `MAX_ID` (an index
entry holds about 2,700 bytes), nesting deeper than `MAX_DEPTH`, and a lone surrogate (it
cannot be encoded for a text column).

Each service states its own rules in a `Screen`: the event types it takes in and the
contract's parser for them, the JSON decoder it reads records with (the notifier `json`,
channel-sync `orjson`, which reads an integer beyond 64 bits as a float and refuses a lone
surrogate escape as it reads the JSON), and where a lone surrogate is refused (the notifier
only in identifiers: in a customer value it is kept, and replaced with U+FFFD in the email;
channel-sync anywhere).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from backorder_events import InvalidEvent
from pydantic import ValidationError

# The default; the notifier's BACKORDERS_NOTIFIER_MAX_RECORD_BYTES, channel-sync's
# CHANNEL_SYNC_MAX_RECORD_BYTES.
MAX_RECORD_BYTES = 1 << 20
MAX_TEXT = 10_000
MAX_ID = 500
MAX_DEPTH = 32
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
# What a dead letter keeps of the raw record and of its reason.
RAW_KEPT = 64 * 1024
REASON_KEPT = 16 * 1024

Decoder = Literal["json", "orjson"]
Surrogates = Literal["ids", "all"]


@dataclass(frozen=True, slots=True)
class Refused:
    """A record that cannot be taken in: dead-lettered with `reason`."""

    reason: str
    event_id: str | None = None
    event_type: str | None = None


@dataclass(frozen=True, slots=True)
class Screen:
    """One service's screening of its consumed records."""

    types: frozenset[str]  # the event types taken in; records of any other are passed over
    parse: Callable[[dict], Any]  # the contract's parser for an object of one of `types`
    decoder: Decoder  # how the record's JSON is read
    surrogates: Surrogates  # where a lone surrogate is refused: identifiers, or every string

    def record(self, raw: bytes | str | None, max_bytes: int = MAX_RECORD_BYTES) -> Any | Refused | None:
        """The event a raw record carries, parsed; None for what is of no interest (another
        event type, or no record at all); `Refused` with the reason for a record that cannot
        be taken in: it is dead-lettered. Whatever the contract's parser raises is a
        refusal, never an error of the intake."""
        if raw is None:
            return None
        obj = read_object(raw, max_bytes, decoder=self.decoder)
        if isinstance(obj, Refused):
            return obj
        event_id, shown_type = identity(obj)
        kind = obj.get("type")
        if not isinstance(kind, str):
            return Refused("not an event: no type", event_id)
        if kind not in self.types:
            return None
        found = problem(obj, surrogates=self.surrogates)
        if found:
            return Refused(found, event_id, shown_type)
        try:
            return self.parse(obj)
        except InvalidEvent as error:
            return Refused(error.reason, event_id, shown_type)
        except ValidationError as error:
            return Refused(validation_reason(error), event_id, shown_type)
        except Exception as error:  # noqa: BLE001 - a parser that fails otherwise (OverflowError...)
            return Refused(f"the event cannot be read: {type(error).__name__}: {error}", event_id, shown_type)

    def identity_of(self, raw: bytes | str | None) -> tuple[str | None, str | None]:
        """The id and type of the event a raw record carries, when they can be read."""
        obj = read_object(raw, decoder=self.decoder) if raw is not None else None
        return identity(obj) if isinstance(obj, dict) else (None, None)


def read_object(raw: bytes | str, max_bytes: int = MAX_RECORD_BYTES, *, decoder: Decoder = "json") -> dict | Refused:
    """The record's JSON object, or why it is not one."""
    size = len(raw.encode("utf-8", "surrogatepass")) if isinstance(raw, str) else len(raw)
    if size > max_bytes:
        return Refused(f"record too large: {size:,} bytes (at most {max_bytes:,})")
    obj = _orjson_loads(raw) if decoder == "orjson" else _json_loads(raw)
    if isinstance(obj, Refused):
        return obj
    if not isinstance(obj, dict):
        return Refused(f"not a JSON object but {_kind(obj)}")
    return obj


def _json_loads(raw: bytes | str) -> Any:
    if isinstance(raw, (bytes, bytearray, memoryview)):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as error:
            return Refused(f"not UTF-8: {error}")
    else:
        text = raw
    try:
        return json.loads(text)
    except RecursionError:
        return Refused("not JSON: nested too deeply")
    except ValueError as error:
        return Refused(f"not JSON: {error}")


def _orjson_loads(raw: bytes | str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        if isinstance(raw, (bytes, bytearray, memoryview)):
            try:
                bytes(raw).decode("utf-8")
            except UnicodeDecodeError as not_utf8:
                return Refused(f"not UTF-8: {not_utf8}")
        return Refused(f"not JSON: {error}")


def identity(obj: dict) -> tuple[str | None, str | None]:
    """The event's id and type when they can be shown as they are."""
    found = []
    for key in ("id", "type"):
        value = obj.get(key)
        if type(value) is int and INT_MIN <= value <= INT_MAX:
            value = str(value)
        found.append(value if isinstance(value, str) and len(value) <= MAX_ID and _clean(value) else None)
    return found[0], found[1]


def problem(obj: Any, *, surrogates: Surrogates) -> str | None:
    """The first value that cannot be stored, with where it is (`data.lines[0].sku`), or
    None. `surrogates`: where a lone surrogate is refused, "ids" or "all" strings."""
    stack: list[tuple[Any, str, int, bool]] = [(obj, "", 0, False)]
    while stack:
        value, path, depth, is_id = stack.pop()
        where = path or "the event"
        if depth > MAX_DEPTH:
            return f"nested more than {MAX_DEPTH} levels deep at {where}"
        if isinstance(value, str):
            found = _text_problem(value, is_id, surrogates)
            if found:
                return f"{found} at {where}"
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if not INT_MIN <= value <= INT_MAX:
                return f"integer out of range at {where} ({_digits(value)}; at most 64 bits)"
        elif isinstance(value, float):
            if not math.isfinite(value) or abs(value) >= 2.0**63:
                return f"number out of range at {where} ({value!r})"
        elif isinstance(value, dict):
            for key, item in reversed(list(value.items())):
                key_text = str(key)
                found = _text_problem(key_text, True, "all")
                if found:
                    return f"{found} in a field name at {where}"
                stack.append((item, f"{path}.{key_text}" if path else key_text, depth + 1, _is_id(key_text)))
        elif isinstance(value, list):
            for index in reversed(range(len(value))):
                stack.append((value[index], f"{path}[{index}]", depth + 1, is_id))
    return None


def validation_reason(error: ValidationError) -> str:
    """The contract's refusal in a line: its first three errors, and how many more."""
    parts = []
    for item in error.errors(include_url=False, include_input=False)[:3]:
        where = ".".join(str(part) for part in item["loc"]) or "the event"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - len(parts)
    return "invalid event: " + "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def storable(text: str, limit: int) -> str:
    """`text` as PostgreSQL and SQLite text can hold it (no NUL, no lone surrogate), at
    most `limit` characters (a note says how long it was)."""
    cut = text[:limit]
    cut = cut.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > limit:
        cut += f"… [cut: {len(text):,} characters in all]"
    return cut


def raw_text(raw: bytes | str | None) -> str:
    """A raw record as stored in a dead letter: UTF-8 (errors replaced), cut at RAW_KEPT."""
    if raw is None:
        return ""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        data = bytes(raw)
        if len(data) > RAW_KEPT * 4:
            text = data[:RAW_KEPT * 4].decode("utf-8", "replace")
            return storable(text, RAW_KEPT).rstrip() + f"… [cut: {len(data):,} bytes in all]"
        raw = data.decode("utf-8", "replace")
    return storable(raw, RAW_KEPT)


def _text_problem(value: str, is_id: bool, surrogates: Surrogates) -> str | None:
    limit = MAX_ID if is_id else MAX_TEXT
    if len(value) > limit:
        return f"{'identifier' if is_id else 'string'} too long ({len(value):,} characters; at most {limit:,})"
    if "\x00" in value:
        return "NUL character"
    if (is_id or surrogates == "all") and not _clean(value):
        return "lone surrogate (not valid Unicode)"
    return None


def _clean(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def _is_id(key: str) -> bool:
    return key in ("id", "sku") or key.endswith(("_id", "_sku"))


def _digits(value: int) -> str:
    try:
        return f"{len(str(abs(value)))} digits"
    except ValueError:  # beyond Python's int-to-str limit
        return "too many digits"


def _kind(obj: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(obj), "a number")
