"""A dead letter is always storable (PostgreSQL text holds neither NUL nor bytes that are not
UTF-8) and small enough to publish, and its raw input can be had back."""

from __future__ import annotations

import json

import pytest
from backorder_events import DeadLetter, InvalidEvent, parse_event
from backorder_events.limits import MAX_DEAD_LETTER_RAW_BYTES, MAX_DEAD_LETTER_TEXT, MAX_ID_LENGTH


def letter(raw, **fields) -> DeadLetter:
    return DeadLetter(raw=raw, reason=fields.pop("reason", "refused"), source="input", **fields)


def storable(text: str) -> bool:
    """What PostgreSQL text takes: UTF-8 without NUL."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


@pytest.mark.parametrize("raw", [
    '{"id": "a"}',
    b'{"id": "a"}',
    '{"name": "caf\u00e9 \\\\ \\u0000 \\n"}',  # JSON escapes are text like any other
    "",
])
def test_text_that_is_storable_stays_exactly_as_received(raw) -> None:
    record = letter(raw)
    assert record.raw == (raw.decode() if isinstance(raw, bytes) else raw)
    assert (record.raw_escaped, record.raw_size) == (False, None)
    assert record.original() == (raw if isinstance(raw, bytes) else raw.encode())


@pytest.mark.parametrize("raw", [
    b'{"id": "a\x00b"}',  # a NUL byte
    '{"id": "a\x00b"}',
    b'{"id": "\xff\xfe"}',  # not UTF-8
    b'\\x00 \\\\ \x00 \xc3',  # backslashes next to what gets escaped, a cut character
    '{"id": "\ud800"}',  # a str that is not Unicode text
    bytes(range(256)),
])
def test_nul_and_bytes_that_are_not_utf8_are_escaped_and_recoverable(raw) -> None:
    record = letter(raw)
    assert record.raw_escaped and record.raw_size is None
    assert storable(record.raw)
    expected = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    assert record.original() == expected


def test_escaping_is_readable() -> None:
    record = letter(b'{"id": "a\x00b", "path": "C:\\\\x", "bad": "\xff"}')
    assert record.raw == '{"id": "a\\x00b", "path": "C:\\\\\\\\x", "bad": "\\xff"}'


def test_a_huge_input_is_stored_truncated_with_its_size() -> None:
    raw = b'{"sku": "' + b"X" * 3_000_000 + b'"}'
    record = letter(raw)
    assert record.raw_size == len(raw)
    assert len(record.raw.encode()) == MAX_DEAD_LETTER_RAW_BYTES
    assert raw.startswith(record.original())


def test_truncation_leaves_out_a_character_cut_in_two() -> None:
    raw = b"a" * (MAX_DEAD_LETTER_RAW_BYTES - 1) + "é".encode() + b"tail"
    record = letter(raw)
    assert record.raw == "a" * (MAX_DEAD_LETTER_RAW_BYTES - 1)
    assert not record.raw_escaped and record.raw_size == len(raw)


def test_a_huge_input_with_nul_is_truncated_then_escaped() -> None:
    raw = b"\x00" * (2 * MAX_DEAD_LETTER_RAW_BYTES)
    record = letter(raw)
    assert record.raw_escaped and record.raw_size == len(raw)
    assert record.original() == b"\x00" * MAX_DEAD_LETTER_RAW_BYTES
    assert storable(record.raw)


@pytest.mark.parametrize("raw", [b'{"id": "a\x00b"}', b"\xff" * 10, b"x" * (MAX_DEAD_LETTER_RAW_BYTES + 5)])
def test_a_record_read_back_is_not_escaped_or_cut_again(raw) -> None:
    record = letter(raw)
    as_row = record.model_dump()  # what the repository stores and reads back
    assert DeadLetter.model_validate(as_row) == record
    assert DeadLetter.model_validate_json(record.model_dump_json()) == record


def test_a_record_without_a_value_is_stored_as_empty() -> None:
    assert letter(None).raw == ""


def test_ids_types_reasons_and_sources_are_storable_and_short() -> None:
    record = DeadLetter(
        raw="x", reason="why\x00" + "r" * 10_000, source="file\udcff.jsonl",
        event_id="e\x00" * 1_000, event_type="T\ud800",
    )
    for text in (record.reason, record.source, record.event_id, record.event_type):
        assert storable(text)
    assert len(record.reason) == MAX_DEAD_LETTER_TEXT and record.reason.endswith("…")
    assert len(record.event_id) == MAX_ID_LENGTH
    assert record.reason.startswith("why\\x00") and record.event_type == "T\\ud800"


def test_a_refused_poison_message_becomes_a_storable_dead_letter() -> None:
    raw = json.dumps({"specversion": "1.0", "id": "e\u0000" * 300, "source": "/s",
                      "type": "MarkBackorder", "time": "2025-01-01T00:00:00Z",
                      "data": {"order_ids": ["o"]}}).encode()
    with pytest.raises(InvalidEvent) as exc:
        parse_event(raw)
    record = DeadLetter.from_error(raw, exc.value, source="orders", position=3, partition=0)
    assert record.reason == "MarkBackorder: id: must not contain a NUL character (U+0000)"
    assert storable(record.event_id) and len(record.event_id) <= MAX_ID_LENGTH
    assert record.original() == raw and not record.raw_escaped  # the escape \u0000 is text
