"""What a consumed record must be before it is parsed and stored (pure).

A record the notifier cannot take in is dead-lettered with the reason, never retried and
never allowed to stop the intake: a record that is too large, not UTF-8, not JSON, not a
JSON object, or an event of interest that the contract refuses (whatever its parser
raises), and values that PostgreSQL or the rest of the notifier cannot hold even though
the contract lets them through: a NUL character (PostgreSQL text refuses it), an integer
beyond 64 bits (a quantity of 2**70), a string beyond `MAX_TEXT` characters or an
identifier beyond `MAX_ID` (an index entry holds about 2,700 bytes), nesting deeper than
`MAX_DEPTH`, and a lone surrogate in an identifier (it cannot be encoded for a text
column; in a customer value it is kept, and replaced with U+FFFD in the email).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

MAX_RECORD_BYTES = 1 << 20  # the default; the Kafka worker's BACKORDERS_NOTIFIER_MAX_RECORD_BYTES
MAX_TEXT = 10_000
MAX_ID = 500
MAX_DEPTH = 32
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
# What a dead letter keeps of the raw record and of its reason.
RAW_KEPT = 64 * 1024
REASON_KEPT = 16 * 1024


@dataclass(frozen=True, slots=True)
class Refused:
    """A record that cannot be taken in: dead-lettered with `reason`."""

    reason: str
    event_id: str | None = None
    event_type: str | None = None


def read_object(raw: bytes | str, max_bytes: int = MAX_RECORD_BYTES) -> dict | Refused:
    """The record's JSON object, or why it is not one."""
    size = len(raw.encode("utf-8", "surrogatepass")) if isinstance(raw, str) else len(raw)
    if size > max_bytes:
        return Refused(f"record too large: {size:,} bytes (at most {max_bytes:,})")
    if isinstance(raw, (bytes, bytearray, memoryview)):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as error:
            return Refused(f"not UTF-8: {error}")
    else:
        text = raw
    try:
        obj = json.loads(text)
    except RecursionError:
        return Refused("not JSON: nested too deeply")
    except ValueError as error:
        return Refused(f"not JSON: {error}")
    if not isinstance(obj, dict):
        return Refused(f"not a JSON object but {_kind(obj)}")
    return obj


def identity(obj: dict) -> tuple[str | None, str | None]:
    """The event's id and type when they can be shown as they are."""
    found = []
    for key in ("id", "type"):
        value = obj.get(key)
        if type(value) is int and INT_MIN <= value <= INT_MAX:
            value = str(value)
        found.append(value if isinstance(value, str) and len(value) <= MAX_ID and _clean(value) else None)
    return found[0], found[1]


def problem(obj: Any, *, surrogates: str = "ids") -> str | None:
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


def _text_problem(value: str, is_id: bool, surrogates: str) -> str | None:
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
