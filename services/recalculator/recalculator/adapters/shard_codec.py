"""JSON for what the stages of the sharded recalculator hand each other through PostgreSQL
(docs/sharding.md): routed records, line and SKU hand-overs, and order partials.

An input event travels as the input's own bytes (parsed again on the shard, so the shard
validates exactly what the router validated) plus the indices a `Restricted` keeps.
"""

from __future__ import annotations

import json
from dataclasses import fields
from decimal import Decimal

from backorder_events import parse_event

from ..domain.results import OrderPartial, PartialLine
from .codec import incoming_doc, incoming_from_doc
from ..domain.sharding import (
    AcquireSkus,
    ArriveLine,
    DepartLine,
    EvictOrder,
    IntroduceOrder,
    LineHandoff,
    MovedLine,
    ReleaseSkus,
    Restricted,
    SkuExport,
)

_OPERATIONS = {
    cls.__name__: cls
    for cls in (IntroduceOrder, DepartLine, ArriveLine, ReleaseSkus, AcquireSkus, EvictOrder)
}


def _plain(value):
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, bytes):
        return {"bytes": value.decode()}
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


def _typed(value):
    if isinstance(value, dict) and len(value) == 1:
        if "decimal" in value:
            return Decimal(value["decimal"])
        if "bytes" in value:
            return value["bytes"].encode()
    return value


def encode_record(item, raw: str | bytes | None) -> str:
    """A routed record: an operation, or an input event (`raw` is its input's bytes)."""
    if not isinstance(item, tuple(_OPERATIONS.values())):
        keep = item.keep if isinstance(item, Restricted) else {}
        text = raw.decode() if isinstance(raw, bytes) else raw
        return json.dumps({"event": text, "keep": keep}, separators=(",", ":"))
    body = {f.name: _plain(getattr(item, f.name)) for f in fields(item)}
    body["op"] = type(item).__name__
    return json.dumps(body, separators=(",", ":"))


def decode_record(payload: str):
    body = json.loads(payload)
    if "event" in body:
        event = parse_event(body["event"])
        keep = {name: tuple(indices) for name, indices in body["keep"].items()}
        return Restricted(event, keep) if keep else event
    cls = _OPERATIONS[body.pop("op")]
    values = {name: _typed(value) for name, value in body.items()}
    if cls is ReleaseSkus or cls is AcquireSkus:
        values["skus"] = tuple(values["skus"])
    return cls(**values)


def encode_handoff(handoff) -> str:
    if isinstance(handoff, LineHandoff):
        return json.dumps({"line": [handoff.published, handoff.manual]})
    return json.dumps({"skus": [
        {
            "sku": export.sku, "known": export.known, "stock": export.stock,
            "total": export.total, "position": export.position, "held_total": export.held_total,
            "incoming": None if export.incoming is None else incoming_doc(export.incoming),
            "lines": [_row(moved) for moved in export.lines],
            **({"orders": [_row(header) for header in export.orders]} if export.orders else {}),
        }
        for export in handoff
    ]})


def _row(item) -> list:
    """A dataclass's fields in order (a moved line, an order's header)."""
    return [_plain(getattr(item, f.name)) for f in fields(item)]


def decode_handoff(payload: str):
    body = json.loads(payload)
    if "line" in body:
        published, manual = body["line"]
        return LineHandoff(published, manual)
    return tuple(
        SkuExport(
            item["sku"], item["known"],
            tuple(MovedLine(*(_typed(value) for value in moved)) for moved in item["lines"]),
            item["stock"], item["total"],
            tuple(item["position"]) if item["position"] is not None else None,
            item["held_total"],
            None if item.get("incoming") is None else incoming_from_doc(item["incoming"]),
            tuple(IntroduceOrder(*(_typed(value) for value in header)) for header in item.get("orders", ())),
        )
        for item in body["skus"]
    )


def handoff_key(item) -> str:
    """Where a departing line or released SKUs are found by their arriving counterpart."""
    if isinstance(item, DepartLine | ArriveLine):
        return json.dumps(["line", item.order_id, item.line_id])
    return json.dumps(["skus", list(item.skus)])


def encode_partial(partial: OrderPartial) -> str:
    body = [partial.company_id, [list(line) for line in partial.lines]]
    if partial.evicted or partial.publish_dates:
        body += [partial.evicted, partial.publish_dates]
    return json.dumps(body, separators=(",", ":"))


def decode_partial(order_id: str, payload: str) -> OrderPartial:
    company_id, lines, *flags = json.loads(payload)
    evicted, publish_dates = (flags + [False, False])[:2]
    return OrderPartial(order_id, company_id, tuple(PartialLine(*line) for line in lines),
                        bool(evicted), bool(publish_dates))
