"""What channel-sync refuses to take in, and why (pure): every poison record becomes a
`Refused` with a readable reason, whatever the contract's parser would raise; records of no
interest are passed over; `parse` (the events only) stays as it was."""

from __future__ import annotations

import json

import pytest
from backorders_platform.screening import Refused
from channel_support import container, position, product, purchase_order
from channel_sync.service import parse, read_record


@pytest.mark.parametrize(("raw", "reason"), [
    (b'{"type": "SkuPositionChanged"', "not JSON: "),
    (b'{"type": "SkuPositionChanged", "id": "\xff"}', "not UTF-8: "),
    (b'"SkuPositionChanged"', "not a JSON object but a string"),
    (b'{"id": "x", "data": {}}', "not an event: no type"),
    (json.dumps({**purchase_order("PO-1", ("A", 1, 0, None)), "time": "0001-01-01T00:00:00+01:00"}).encode(),
     "time: must be at or after 1900-01-01T00:00:00Z and before 2200-01-01T00:00:00Z"),
    (json.dumps(purchase_order("PO-1", ("A", 10**30, 0, None))).encode(), "number out of range at data.lines[0].qty_ordered"),
    (json.dumps(position("A", -(2**70), 0)).encode(), "number out of range at data.available_qty"),
    (json.dumps(container("C\x00", None, {"A": 1})).encode(), "NUL character at data.container_id"),
    # orjson refuses a lone surrogate escape as it reads the JSON
    (json.dumps(product("A", "Mug\ud800")).encode(), "not JSON: no low surrogate in string"),
    (json.dumps(product("A" * 1_000_000, "Mug")).encode(), "identifier too long (1,000,000 characters; at most 500)"),
    (json.dumps(position("A", 1.5, 0)).encode(), "invalid event: data.available_qty: Input should be a valid integer"),
])
def test_a_poison_record_is_refused_with_its_reason(raw, reason):
    refused = read_record(raw)
    assert isinstance(refused, Refused), refused
    assert reason in refused.reason, refused.reason
    assert parse(raw) is None


def test_an_oversized_record_is_refused_unread():
    raw = json.dumps({**position("A", 1, 0), "padding": "x" * 1_100_000}).encode()
    assert read_record(raw).reason == f"record too large: {len(raw):,} bytes (at most 1,048,576)"


def test_other_event_types_are_passed_over_and_valid_ones_read():
    assert read_record(json.dumps({"type": "InventoryAdjusted", "data": {"sku": "\x00"}})) is None
    assert read_record(None) is None
    assert read_record(json.dumps(position("A", 1, 2))).data.backorder_qty == 2
