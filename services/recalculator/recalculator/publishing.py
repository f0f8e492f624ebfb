"""Turning what the engine decided into CloudEvents, and refused inputs into dead letters.

Output ids are UUIDv5 of the cause's id and the order (or SKU): the same log gives the same
ids on every run, retry and replay, so consumers can drop repeats.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

import orjson
from backorder_events import DeadLetter

from .domain.model import from_us
from .domain.results import (
    LineChange,
    OrderBackorderChange,
    Outcome,
    ProductBackorderChange,
    SkuPositionChange,
)

SOURCE = "/backorders/recalculator"
_NAMESPACE = uuid.UUID("6f1f3d8e-2a47-4c5e-9a55-0b2f5d7c9e11")
_NAMESPACE_BYTES = _NAMESPACE.bytes


def output_id(kind: str, cause_id: str, key: str) -> str:
    """`str(uuid.uuid5(_NAMESPACE, name))`, computed without the UUID object: this runs for
    every published event."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{kind}\x1f{cause_id}\x1f{key}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    hex_ = digest.hex()
    return f"{hex_[:8]}-{hex_[8:12]}-{hex_[12:16]}-{hex_[16:20]}-{hex_[20:]}"


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _line(line: LineChange) -> dict:
    """A line of BackorderChanged; its expected dates only when either is known, so that a
    line with neither is what it was before they existed (both default to null)."""
    body = {
        "line_id": line.line_id,
        "sku": line.sku,
        "qty": line.qty,
        "backorder_qty": line.backorder_qty,
        "previous_backorder_qty": line.previous_backorder_qty,
    }
    if line.expected_date is not None or line.previous_expected_date is not None:
        body["expected_date"] = _date(line.expected_date)
        body["previous_expected_date"] = _date(line.previous_expected_date)
    return body


def _date(value: int | None) -> str | None:
    return None if value is None else rfc3339(from_us(value))


def to_json(event: dict) -> str:
    """Compact, key order as built: the same event always gives the same bytes."""
    return orjson.dumps(event).decode()


def order_event(change: OrderBackorderChange, time: str) -> dict:
    return {
        "specversion": "1.0",
        "id": output_id("BackorderChanged", change.cause_id, change.order_id),
        "source": SOURCE,
        "type": "BackorderChanged",
        "time": time,
        "subject": change.order_id,
        "datacontenttype": "application/json",
        "data": {
            "order_id": change.order_id,
            "company_id": change.company_id,
            "status": change.status,
            "previous_status": change.previous_status,
            "reason": change.reason,
            "cause_id": change.cause_id,
            "lines": [_line(line) for line in change.lines],
        },
    }


def product_event(change: ProductBackorderChange, cause_id: str, time: str) -> dict:
    return {
        "specversion": "1.0",
        "id": output_id("ProductBackorderChanged", cause_id, change.sku),
        "source": SOURCE,
        "type": "ProductBackorderChanged",
        "time": time,
        "subject": change.sku,
        "datacontenttype": "application/json",
        "data": {
            "sku": change.sku,
            "backorder_qty": change.backorder_qty,
            "previous_backorder_qty": change.previous_backorder_qty,
        },
    }


def position_event(change: SkuPositionChange, cause_id: str, time: str) -> dict:
    return {
        "specversion": "1.0",
        "id": output_id("SkuPositionChanged", cause_id, change.sku),
        "source": SOURCE,
        "type": "SkuPositionChanged",
        "time": time,
        "subject": change.sku,
        "datacontenttype": "application/json",
        "data": {
            "sku": change.sku,
            "available_qty": change.available_qty,
            "backorder_qty": change.backorder_qty,
            "previous_available_qty": change.previous_available_qty,
            "previous_backorder_qty": change.previous_backorder_qty,
        },
    }


def output_events(outcome: Outcome, cause_id: str, time: datetime) -> list[dict]:
    """BackorderChanged in ascending order id, then ProductBackorderChanged by SKU, then
    SkuPositionChanged by SKU."""
    stamp = rfc3339(time)
    events = [order_event(change, stamp) for change in outcome.orders]
    events.extend(product_event(change, cause_id, stamp) for change in outcome.products)
    events.extend(position_event(change, cause_id, stamp) for change in outcome.positions)
    return events


def dead_letter(
    raw: str | bytes,
    reason: str,
    source: str,
    position: int | None,
    *,
    event_id: str | None = None,
    event_type: str | None = None,
    partition: int | None = None,
) -> DeadLetter:
    return DeadLetter(
        raw=raw,
        reason=reason,
        source=source,
        position=position,
        partition=partition,
        event_id=event_id,
        event_type=event_type,
    )


def dead_letter_line(record: DeadLetter) -> str:
    return record.model_dump_json()
