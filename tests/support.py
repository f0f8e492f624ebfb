"""Helpers shared by the tests: building CloudEvents and reading the engine's state."""

from __future__ import annotations

import itertools
import json

from backorder_events import parse_event

_ids = itertools.count(1)


def event(type_: str, data: dict, *, time: str = "2025-04-30T15:19:00Z", id: str | None = None) -> dict:
    return {
        "specversion": "1.0",
        "id": id or f"t-{next(_ids)}",
        "source": "/tests",
        "type": type_,
        "time": time,
        "data": data,
    }


def in_sequence(*events: dict, start: str = "2025-04-30T15:19:00Z") -> list[dict]:
    """The events one second apart from `start`, in the order given: a log is applied by
    event time (ties go by topic and key), so a scenario whose steps must happen in this
    order says so with its times."""
    from datetime import datetime, timedelta

    first = datetime.fromisoformat(start.replace("Z", "+00:00"))
    return [
        {**e, "time": (first + timedelta(seconds=n)).isoformat().replace("+00:00", "Z")}
        for n, e in enumerate(events)
    ]


def parsed(raw: dict):
    return parse_event(json.dumps(raw))


def feed(engine, *raws: dict):
    """Handle events in order; returns the outcomes."""
    return [engine.handle(parsed(raw)) for raw in raws]


def published(engine) -> dict[tuple[str, str], int]:
    return {
        (order_id, line_id): line.published
        for order_id, order in engine.orders.items()
        for line_id, line in order.lines.items()
    }


def order_lines(engine, order_id: str) -> dict[str, int]:
    return {lid: line.published for lid, line in engine.orders[order_id].lines.items()}


def created(order_id: str, lines: list[tuple[str, str, int]], *, date: str = "2025-04-30T10:00:00Z",
            payment_status: str = "Charged", time: str = "2025-04-30T15:19:00Z", **extra) -> dict:
    data = {
        "order_id": order_id,
        "order_date": date,
        "payment_status": payment_status,
        "lines": [{"line_id": lid, "sku": sku, "qty": qty} for lid, sku, qty in lines],
    }
    data.update(extra)
    return event("OrderCreated", data, time=time)


def stock(sku: str, qty: int, warehouse: str = "W1", *, recalculate: bool = False, time: str = "2025-04-30T15:19:00Z") -> dict:
    return event(
        "InventoryAdjusted",
        {"sku": sku, "warehouse_id": warehouse, "set_to": qty, "recalculate": recalculate},
        time=time,
    )


def backorder_of_new_line(order_status="InProcess", payment_status="Charged", **settings) -> int:
    """Backorder of a qty-2 line with no stock: 2 when the line is calculated, 0 when not."""
    from backorder_events import BackorderSettings
    from recalculator.domain.engine import Engine

    engine = Engine(BackorderSettings(**settings))
    feed(engine, created("o1", [("1", "X", 2)], order_status=order_status,
                         payment_status=payment_status))
    return order_lines(engine, "o1")["1"]
