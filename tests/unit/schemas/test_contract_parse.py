"""parse_event / parse_event_obj: envelope rules and the one-line reasons for rejects."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from backorder_events import (
    INPUT_EVENT_TYPES,
    BackorderChanged,
    DeadLetter,
    InvalidEvent,
    MarkBackorder,
    OrderCreated,
    ProductBackorderChanged,
    parse_event,
    parse_event_obj,
)

DATA = {"order_ids": ["1"]}


def message(**envelope: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": "e-1", "source": "/ops", "type": "MarkBackorder",
            "time": "2025-04-30T15:19:00Z", "data": DATA, **envelope}


def without(key: str) -> dict[str, Any]:
    msg = message()
    del msg[key]
    return msg


def reject(raw: str | bytes) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as exc:
        parse_event(raw)
    return exc.value


def test_str_bytes_and_obj_give_the_same_event() -> None:
    text = json.dumps(message())
    event = parse_event(text)
    assert isinstance(event, MarkBackorder)
    assert parse_event(text.encode()) == event
    assert parse_event_obj(message()) == event


@pytest.mark.parametrize(("raw", "expected"), [
    ("{", "not valid JSON: EOF while parsing an object at line 1 column 1"),
    ("", "not valid JSON: EOF while parsing a value at line 1 column 0"),
    ("{'a': 1}", "not valid JSON: key must be a string at line 1 column 2"),
    (b'{"type": "\xff"}', "not valid JSON: invalid unicode code point at line 1 column 11"),
    ("[]", "not a JSON object"),
    ('"OrderCreated"', "not a JSON object"),
    ("null", "not a JSON object"),
    ("42", "not a JSON object"),
    ("{}", "missing event type"),
    ('{"type": null}', "missing event type"),
    ('{"type": 5}', "event type must be a string, got 5"),
])
def test_malformed_messages(raw: str | bytes, expected: str) -> None:
    error = reject(raw)
    assert error.reason == expected
    assert str(error) == expected
    assert (error.event_id, error.event_type) == (None, None)


def test_unknown_event_type_lists_the_expected_ones() -> None:
    error = reject(json.dumps(message(type="OrderDeleted")))
    assert error.reason == ("unknown event type 'OrderDeleted' (expected one of "
                            + ", ".join(INPUT_EVENT_TYPES) + ")")
    assert (error.event_id, error.event_type) == ("e-1", "OrderDeleted")


def test_output_types_are_not_inputs() -> None:
    error = reject(json.dumps(message(type="BackorderChanged")))
    assert error.reason.startswith("unknown event type 'BackorderChanged'")


@pytest.mark.parametrize("msg", [
    message(specversion="0.3"), message(specversion=1.0), message(specversion=None),
    without("specversion"),
])
def test_specversion_must_be_1_0(msg: dict[str, Any]) -> None:
    error = reject(json.dumps(msg))
    assert error.reason == "specversion must be '1.0'"
    assert (error.event_id, error.event_type) == ("e-1", "MarkBackorder")


@pytest.mark.parametrize(("msg", "expected"), [
    (without("time"), "MarkBackorder: time: Field required"),
    (message(time=None), "MarkBackorder: time: Input should be an RFC 3339 timestamp"),
    (message(time=1714490340), "MarkBackorder: time: Input should be an RFC 3339 timestamp"),
    (message(time="2025-04-30"), "MarkBackorder: time: Input should be an RFC 3339 timestamp"),
    (message(time="30/04/2025 15:19"),
     "MarkBackorder: time: Input should be an RFC 3339 timestamp"),
    (without("id"), "MarkBackorder: id: Field required"),
    (message(id=""), "MarkBackorder: id: String should have at least 1 character"),
    (message(id=7), "MarkBackorder: id: Input should be a valid string"),
    (without("source"), "MarkBackorder: source: Field required"),
    (message(source=""), "MarkBackorder: source: String should have at least 1 character"),
    (without("data"), "MarkBackorder: data: Field required"),
    (message(data=None), "MarkBackorder: data: Input should be an object"),
    (message(data=[1]), "MarkBackorder: data: Input should be an object"),
    (message(subject=5), "MarkBackorder: subject: Input should be a valid string"),
])
def test_envelope_field_errors(msg: dict[str, Any], expected: str) -> None:
    assert reject(json.dumps(msg)).reason == expected


def test_event_id_read_even_when_invalid() -> None:
    error = reject(json.dumps(message(id=5145827, data={"order_ids": []})))
    assert error.event_id == "5145827"
    assert error.event_type == "MarkBackorder"


def test_parse_event_obj_rejects_with_the_same_reasons() -> None:
    with pytest.raises(InvalidEvent, match=r"^missing event type$"):
        parse_event_obj({})
    with pytest.raises(InvalidEvent, match=r"^not a JSON object$"):
        parse_event_obj([])  # type: ignore[arg-type]
    with pytest.raises(InvalidEvent) as exc:
        parse_event_obj(message(data={"order_ids": [True]}))
    assert exc.value.reason == "MarkBackorder: data.order_ids[0]: Input should be a valid string"


def test_invalid_event_is_a_value_error() -> None:
    assert issubclass(InvalidEvent, ValueError)


def test_envelope_fields_are_required_in_python_too() -> None:
    now = datetime(2025, 4, 30, 15, 19, tzinfo=timezone.utc)
    event = MarkBackorder(specversion="1.0", type="MarkBackorder", id="e-1", source="/ops",
                          time=now, data={"order_ids": [1]})
    assert parse_event(event.model_dump_json()) == event
    assert MarkBackorder.event_type == "MarkBackorder"
    with pytest.raises(ValueError, match="specversion"):
        MarkBackorder.model_validate(without("specversion"))
    with pytest.raises(ValueError, match="type"):
        MarkBackorder.model_validate({**message(), "type": "MarkNotBackorder"})


def test_events_are_immutable() -> None:
    event = parse_event(json.dumps(message()))
    with pytest.raises(ValueError):
        event.id = "other"  # type: ignore[misc]
    with pytest.raises(ValueError):
        event.data.order_ids = []  # type: ignore[misc]


CHANGED_DATA = {
    "order_id": 5145827, "company_id": "default", "status": "Partial",
    "previous_status": "None", "reason": "recalculation", "cause_id": "e-42",
    "lines": [{"line_id": "1", "sku": "SKU-1", "qty": 3, "backorder_qty": 1,
               "previous_backorder_qty": 0}],
}


def output(cls: Any, data: dict[str, Any]) -> Any:
    return cls(specversion="1.0", type=cls.event_type, id="out-1", source="/recalculator",
               time=datetime(2025, 4, 30, 15, 19), subject="5145827", data=data)


def test_output_events_build_and_dump() -> None:
    changed = output(BackorderChanged, CHANGED_DATA)
    dumped = json.loads(changed.model_dump_json())
    assert dumped["type"] == "BackorderChanged"
    assert dumped["time"] == "2025-04-30T15:19:00Z"
    assert dumped["data"]["order_id"] == "5145827"
    assert (dumped["data"]["status"], dumped["data"]["previous_status"]) == ("Partial", "None")
    assert BackorderChanged.model_validate_json(changed.model_dump_json()) == changed
    product = output(ProductBackorderChanged,
                     {"sku": "SKU-1", "backorder_qty": 1, "previous_backorder_qty": 0})
    assert product.model_dump(mode="json")["data"]["backorder_qty"] == 1


@pytest.mark.parametrize("data", [
    {"reason": "because"},
    {"status": "Some"},
    {"cause_id": ""},
    {"lines": [{"line_id": "1", "sku": "A", "qty": 1, "backorder_qty": -1,
                "previous_backorder_qty": 0}]},
])
def test_output_data_is_validated(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        output(BackorderChanged, {**CHANGED_DATA, **data})


def test_dead_letter_keeps_raw_input_as_text() -> None:
    raw = b'{"type": "\xff\xfe"}'
    error = reject(raw)
    letter = DeadLetter.from_error(raw, error, source="input.jsonl", position=7)
    # Bytes that are not UTF-8 are escaped, so the text is storable and the input recoverable.
    assert letter.raw == '{"type": "\\xff\\xfe"}' and letter.raw_escaped
    assert letter.original() == raw
    assert letter.reason == error.reason
    assert (letter.source, letter.position, letter.partition) == ("input.jsonl", 7, None)
    assert DeadLetter.model_validate_json(letter.model_dump_json()) == letter


def test_dead_letter_carries_event_id_and_type() -> None:
    raw = json.dumps(message(data={"order_ids": []}))
    letter = DeadLetter.from_error(raw, reject(raw), source="orders", position=12, partition=3)
    assert letter.raw == raw
    assert (letter.event_id, letter.event_type, letter.partition) == ("e-1", "MarkBackorder", 3)
    assert "data.order_ids" in letter.reason


def test_order_created_is_exported_and_parsed() -> None:
    data = {"order_id": "1", "order_date": "2025-04-30T15:19:00Z",
            "lines": [{"line_id": "1", "sku": "A", "qty": 1}]}
    assert isinstance(parse_event_obj(message(type="OrderCreated", data=data)), OrderCreated)
