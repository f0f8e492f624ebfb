"""Helpers shared by the tests: building CloudEvents and reading the engine's state."""

from __future__ import annotations

import itertools
import json
import re

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


def generated_events(seed: int = 7, orders: int = 600) -> list:
    """A generated day's inputs, parsed; the malformed lines it holds on purpose left out."""
    from backorders_workload import WorkloadShape, generate_day

    events = []
    for raw in generate_day(seed=seed, shape=WorkloadShape(orders=orders)):
        try:
            events.append(parsed(raw))
        except ValueError:
            pass
    return events


def published(engine) -> dict[tuple[str, str], int]:
    return {
        (order_id, line_id): line.published
        for order_id, order in engine.orders.items()
        for line_id, line in order.lines.items()
    }


def expected_dates(engine) -> dict:
    """Each line's expected date now and the one last published for it."""
    return {
        (order.order_id, line.line_id): (engine.expected_date(line), line.published_date)
        for order in engine.orders.values() for line in order.lines.values()
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


def poison_inputs() -> list[tuple[str, bytes, str]]:
    """One input of each kind that once escaped dead-lettering (a crash, a stopped run or
    partition, a value that could not be stored), as (what, raw bytes, part of the reason
    its dead letter must give). The last one is refused by the engine: it needs the stock
    that `poison_setup()` leaves, and is valid on its own."""
    from backorder_events.limits import MAX_EVENT_BYTES

    order = created("poison-order", [("1", "SKU-P", 1)])

    def encoded(raw: dict, **changes) -> bytes:
        return json.dumps({**raw, **changes}, ensure_ascii=False).encode()

    oversized = created("poison-big", [("1", "SKU-P", 1)])
    oversized["padding"] = "x" * (2 * MAX_EVENT_BYTES)
    return [
        ("overflowing time", encoded(order, id="poison-time", time="0001-01-01T00:00:00+01:00"),
         "OrderCreated: time: must be at or after 1900-01-01T00:00:00Z and before 2200-01-01T00:00:00Z"),
        ("overflowing order date",
         encoded(created("poison-date", [("1", "SKU-P", 1)], date="9999-12-31T23:59:59-01:00"),
                 id="poison-date"),
         "OrderCreated: data.order_date: must be at or after 1900-01-01"),
        ("set_to 2**70", encoded(stock("SKU-P", 2**70), id="poison-2e70"),
         "InventoryAdjusted: data.set_to: Input should be less than or equal to 1000000000000"),
        ("set_to 10**30", encoded(stock("SKU-P", 10**30), id="poison-1e30"),
         "InventoryAdjusted: data.set_to: Input should be less than or equal to 1000000000000"),
        ("qty 2**70", encoded(created("poison-qty", [("1", "SKU-P", 2**70)]), id="poison-qty"),
         "OrderCreated: data.lines[0].qty: Input should be less than or equal to 1000000000"),
        ("NUL in an id", encoded(created("poison\u0000order", [("1", "SKU-P", 1)]), id="poison-nul-id"),
         "OrderCreated: data.order_id: must not contain a NUL character (U+0000)"),
        ("NUL in a customer name",
         encoded(created("poison-customer", [("1", "SKU-P", 1)],
                         customer={"first_name": "Ann\u0000", "last_name": "Lee"}), id="poison-nul-name"),
         "OrderCreated: data.customer.first_name: must not contain a NUL character (U+0000)"),
        ("a huge SKU", encoded(stock("X" * 1_000_000, 1), id="poison-sku"),
         "InventoryAdjusted: data.sku: String should have at most 200 characters"),
        ("an oversized event", encoded(oversized, id="poison-big"),
         f"bytes is larger than the limit of {MAX_EVENT_BYTES} bytes"),
        ("bytes that are not UTF-8", b'{"specversion": "1.0", "id": "poison-\xff\xfe", "type": "OrderCreated"}',
         "not valid JSON"),
        ("a NUL byte", b'{"specversion": "1.0", "id": "poison-\x00", "type": "OrderCreated"}',
         "not valid JSON"),
        ("an infinite price",
         json.dumps(created("poison-price", [("1", "SKU-P", 1)], id="poison-price")).replace(
             '"qty": 1}', '"qty": 1, "unit_price": 1e999}').encode(),
         "OrderCreated: data.lines[0].unit_price: must be a finite number"),
        ("stock beyond the limit by a delta",
         encoded(event("InventoryAdjusted", {"sku": "SKU-P", "warehouse_id": "W1", "delta": 1}),
                 id="poison-delta"),
         "stock of SKU 'SKU-P' in warehouse 'W1' would be 1000000000001, beyond the limit"),
    ]


def poison_setup() -> bytes:
    """A valid input that puts SKU-P at the most stock a warehouse may hold."""
    from backorder_events.limits import MAX_STOCK_QTY

    return json.dumps({**stock("SKU-P", MAX_STOCK_QTY), "id": "poison-setup"}).encode()


def assert_references_resolve(document: dict) -> None:
    """Every local `$ref` of an OpenAPI or AsyncAPI document names a node of it."""
    text = json.dumps(document)
    for ref in set(re.findall(r'"\$ref": "#/([^"]+)"', text)):
        node = document
        for part in ref.split("/"):
            assert part in node, f"unresolved reference #/{ref}"
            node = node[part]
