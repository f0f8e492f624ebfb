"""The partitioned tasks' rules where a random interleaving rarely shows them: a broadcast
recalculation covers what every route task routed before it, and an order waiting for the
parts of one of its own inputs is not published half-assembled meanwhile."""

from __future__ import annotations

from recalculator.domain.partitioned import AllocationTask, AssemblyTask, RouteTask
from support import event, parsed

T0 = "2025-05-01T10:00:00Z"


def at(minute: int) -> str:
    return f"2025-05-01T10:{minute:02d}:00Z"


def order(order_id: str, *skus: str, minute: int) -> object:
    return parsed(event("OrderCreated", {
        "order_id": order_id, "order_date": T0, "payment_status": "Charged",
        "lines": [{"line_id": str(n), "sku": sku, "qty": 2} for n, sku in enumerate(skus, 1)],
    }, time=at(minute)))


def stock(sku: str, qty: int, minute: int, recalculate: bool = False) -> object:
    return parsed(event("InventoryAdjusted", {
        "sku": sku, "warehouse_id": "W1", "set_to": qty, "recalculate": recalculate,
    }, time=at(minute)))


def envelopes(routed) -> list:
    assert routed.status == "applied", routed.reason
    return [envelope for _, envelope in routed.envelopes]


def test_a_broadcast_recalculation_waits_for_every_route_tasks_copy():
    routes = [RouteTask(p, 2, 1) for p in range(2)]
    partition = AllocationTask(0, 2)
    recalculate = parsed(event("RecalculateBackorders", {}, time=at(9)))
    created = envelopes(routes[0].route(order("o1", "D", minute=1)))
    restocked = envelopes(routes[1].route(stock("D", 5, minute=2)))
    copies = [envelopes(route.route(recalculate, broadcast=True)) for route in routes]
    for envelope in created + copies[0] + restocked:  # route 1's restock overtakes nothing
        partition.receive(envelope)
    assert partition.engine.orders["o1"].lines["1"].published == 2  # not recalculated yet
    for envelope in copies[1]:
        partition.receive(envelope)
    # Recalculated with the stock route 1 sent before its copy.
    assert partition.engine.orders["o1"].lines["1"].published == 0
    assert partition.idle()


def test_an_order_waiting_for_its_inputs_parts_is_not_published_half_assembled():
    route = RouteTask(0, 1, 2)
    partitions = [AllocationTask(q, 1) for q in range(2)]
    assembly = AssemblyTask()
    messages = {q: [] for q in range(2)}
    for routed in (route.route(order("o1", "A", "D", minute=1)), route.route(stock("A", 1, 2, True))):
        for q, envelope in routed.envelopes:
            messages[q].extend(partitions[q].receive(envelope).partials)
    a, b = (messages[1], messages[0])  # A is partition 1's, D partition 0's
    assert [m.cause_id for m in a] == [a[0].cause_id, a[1].cause_id] and a[0].final and not a[1].final
    published = []
    for message in a:  # A's part of the creation, then A's restock
        published += assembly.receive(message)
    assert published == []  # still waiting for D's part of the creation
    for message in b:
        published += assembly.receive(message)
    assert len(published) == 1
    (key, change), = published
    assert key == (a[0].cause_id, "o1")
    # Both lines as they are now: A half filled by the restock, D short.
    assert {line.line_id: line.backorder_qty for line in change.lines} == {"1": 1, "2": 2}
    assert change.status == "Partial"
    assert assembly.idle()
