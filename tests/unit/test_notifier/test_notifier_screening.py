"""What the notifier refuses to take in, and why (pure): every poison record becomes a
`Refused` with a readable reason, whatever the contract's parser would raise; records of no
interest are passed over; valid events go through."""

from __future__ import annotations

import json

import pytest
from backorder_events import BackorderChanged, OrderCreated
from notifier.service import decode
from backorders_platform.screening import RAW_KEPT, Refused, raw_text, storable

from notifier_events import backorder_changed, order_created


def _with(event: dict, **changes) -> str:
    for path, value in changes.items():
        target = event
        *parents, last = path.split("__")
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return json.dumps(event)


def _order() -> dict:
    return order_created("o1").model_dump(mode="json")


def _change() -> dict:
    return backorder_changed("o1").model_dump(mode="json")


@pytest.mark.parametrize(("raw", "reason"), [
    (b'{"specversion": "1.0", "id": "x", "type": "OrderCreated"', "not JSON: "),
    (b'\xff\xfe{"type": "OrderCreated"}', "not UTF-8: "),
    (b"[1, 2]", "not a JSON object but an array"),
    (b'{"id": "x"}', "not an event: no type"),
    (_with(_change(), time="0001-01-01T00:00:00+01:00").encode(),
     "time: must be at or after 1900-01-01T00:00:00Z and before 2200-01-01T00:00:00Z"),
    (_with(_change(), data__lines__0__qty=2**70).encode(),
     "integer out of range at data.lines[0].qty (22 digits; at most 64 bits)"),
    (_with(_change(), data__lines__0__backorder_qty=10**30).encode(),
     "integer out of range at data.lines[0].backorder_qty"),
    (_with(_order(), data__order_id="o\x001").encode(), "NUL character at data.order_id"),
    (_with(_order(), data__lines__0__sku="cat\x00hammock").encode(), "NUL character at data.lines[0].sku"),
    (_with(_order(), data__customer__first_name="Co\x00lin").encode(), "NUL character at data.customer.first_name"),
    (_with(_order(), data__lines__0__sku="S" * 1_000_000).encode(),
     "identifier too long (1,000,000 characters; at most 500) at data.lines[0].sku"),
    (_with(_order(), data__customer__last_name="x" * 20_000).encode(),
     "string too long (20,000 characters; at most 10,000) at data.customer.last_name"),
    # json.dumps writes the lone surrogate as the escape \ud800: valid JSON, not storable text
    (_with(_order(), data__order_id="o\ud8001").encode(), "lone surrogate (not valid Unicode) at data.order_id"),
    (_with(_change(), data__status="Maybe").encode(), "invalid event: data.status: "),
    (_with(_order(), data__lines=[]).encode(), "OrderCreated"),
])
def test_a_poison_record_is_refused_with_its_reason(raw, reason):
    refused = decode(raw)
    assert isinstance(refused, Refused), refused
    assert reason in refused.reason, refused.reason


def test_an_oversized_record_is_refused_unread():
    raw = json.dumps({**_order(), "padding": "x" * 2_000_000}).encode()
    refused = decode(raw)
    assert isinstance(refused, Refused)
    assert refused.reason == f"record too large: {len(raw):,} bytes (at most 1,048,576)"
    # Allowed in, it is read (and then refused for its oversized string).
    assert "string too long" in decode(raw, max_bytes=4 << 20).reason


def test_the_refusal_names_the_event_when_it_can():
    refused = decode(_with(_change(), id="bc-9", data__lines__0__qty=2**70))
    assert (refused.event_id, refused.event_type) == ("bc-9", "BackorderChanged")
    refused = decode(_with(_change(), id="b\x00c"))
    assert (refused.event_id, refused.event_type) == (None, "BackorderChanged")


def test_events_of_no_interest_are_passed_over_even_when_odd():
    assert decode(json.dumps({"type": "InventoryAdjusted", "data": {"sku": "x\x00" * 10}})) is None
    assert decode(json.dumps({"type": "ReallocateBackorder", "time": "0001-01-01T00:00:00+01:00"})) is None
    assert decode(None) is None


def test_valid_events_go_through_and_a_lone_surrogate_in_a_customer_value_is_refused():
    assert isinstance(decode(backorder_changed("o1").model_dump_json()), BackorderChanged)
    assert isinstance(decode(_with(_order(), data__customer__first_name="Jo")), OrderCreated)
    # Not valid Unicode: the contract refuses it, so the recalculator never publishes a
    # backorder for such an order either.
    refused = decode(_with(_order(), data__customer__first_name="Jo\ud800"))
    assert not isinstance(refused, OrderCreated)
    assert "data.customer.first_name" in refused.reason and "unicode" in refused.reason


def test_what_a_dead_letter_keeps_is_storable_and_bounded():
    assert storable("a\x00b\ud800c", 100) == "a\\x00b\\ud800c"
    kept = raw_text(b"{" + b"x" * (RAW_KEPT * 8) + b"\xff")
    assert len(kept) < RAW_KEPT + 100 and kept.endswith(f"[cut: {RAW_KEPT * 8 + 2:,} bytes in all]")
    assert raw_text(b"ok\xffok") == "ok\ufffdok"
