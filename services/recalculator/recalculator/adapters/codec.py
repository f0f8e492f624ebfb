"""The engine's state as rows and back. Orders travel as one JSON document each."""

from __future__ import annotations

from decimal import Decimal

import orjson

from ..domain.engine import Engine
from ..domain.incoming import PoLines, SkuIncoming
from ..domain.model import Line, Order


def order_doc(order: Order) -> str:
    return orjson.dumps(
        {
            "company_id": order.company_id,
            "order_date": order.order_date,
            "order_status": order.order_status,
            "payment_status": order.payment_status,
            "payment_date": order.payment_date,
            "rush": order.rush,
            "picked": order.picked,
            "ship_from_warehouse_id": order.ship_from_warehouse_id,
            "channel": order.channel,
            "customer": None if order.customer is None else orjson.Fragment(order.customer),
            "published_status": order.published_status,
            "lines": [
                [l.line_id, l.sku, l.qty, l.published, l.manual, l.name, l.unit_price, l.owing,
                 l.published_date]
                for l in order.lines.values()
            ],
        },
        default=_decimal,
    ).decode()


def _decimal(value):
    if isinstance(value, Decimal):
        return str(value)  # a price given as a decimal keeps its digits
    raise TypeError(f"cannot store {type(value).__name__}")


def order_row(order: Order) -> dict:
    backordered = sum(line.published for line in order.lines.values())
    return {
        "order_id": order.order_id,
        "company_id": order.company_id,
        "order_date": order.order_date,
        "backorder_status": order.published_status,
        "backorder_qty": backordered,
        "qty": sum(line.qty for line in order.lines.values()),
        "doc": order_doc(order),
        "closed_at": order.closed_at,
    }


def load_order(engine: Engine, order_id: str, doc: str, closed_at: int | None = None) -> Order:
    """Add a stored order to the engine (call `engine.rebuild()` once all are loaded). A line
    stored before lines said whether they owe a recalculation owes one when its order is
    closed."""
    data = orjson.loads(doc)
    order = Order(
        order_id=order_id,
        company_id=data["company_id"],
        order_date=data["order_date"],
        order_status=data["order_status"],
        payment_status=data["payment_status"],
        payment_date=data["payment_date"],
        rush=data["rush"],
        picked=data["picked"],
        ship_from_warehouse_id=data["ship_from_warehouse_id"],
        channel=data["channel"],
        customer=None if data["customer"] is None else orjson.dumps(data["customer"]),
        published_status=data["published_status"],
        closed_at=closed_at,
    )
    for line_id, sku, qty, published, manual, name, unit_price, *rest in data["lines"]:
        line = Line(order, line_id, sku, qty, name, unit_price, published, manual)
        order.lines[line_id] = line
        engine.lines_by_sku[sku].add(line)
        engine.totals[sku] += published
        if (rest[0] if rest else closed_at is not None):
            engine._mark_owing(line)  # noqa: SLF001 - the engine's own bookkeeping
        if len(rest) > 1:
            line.published_date = rest[1]
    engine.orders[order_id] = order
    return order



def incoming_doc(incoming: SkuIncoming) -> str:
    return orjson.dumps({
        "pos": {po_id: [po.updated_at, po.lines] for po_id, po in sorted(incoming.pos.items())},
        "containers": {cid: list(entry) for cid, entry in sorted(incoming.containers.items())},
    }).decode()


def incoming_from_doc(doc: str) -> SkuIncoming:
    data = orjson.loads(doc)
    incoming = SkuIncoming()
    for po_id, (updated_at, lines) in data["pos"].items():
        incoming.pos[po_id] = PoLines(updated_at, lines)
    for container_id, (qty, eta) in data["containers"].items():
        incoming.containers[container_id] = (qty, eta)
    return incoming


def load_incoming(engine: Engine, sku: str, doc: str) -> None:
    incoming = engine.incoming[sku] = incoming_from_doc(doc)
    for po_id in incoming.pos:
        engine.po_skus.setdefault(po_id, set()).add(sku)
    for container_id in incoming.containers:
        engine.container_skus.setdefault(container_id, set()).add(sku)
