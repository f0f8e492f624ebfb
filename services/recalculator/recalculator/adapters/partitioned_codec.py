"""Bytes for the messages the partitioned recalculator's tasks send each other through
internal topics, and JSON for each task's protocol state (docs/sharding.md, "The
recalculator on consumer groups"). The tasks themselves are pure (domain/partitioned.py).

An input event travels as the input's own bytes when the runtime has them (`raw_of`),
otherwise as the event's JSON (a piece of a command cut per order), plus the indices a
`Restricted` keeps, as the sharded runtime's routed records do (shard_codec). Operations and
hand-overs reuse shard_codec's JSON.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import orjson
from backorder_events import parse_event

from ..domain.engine import Engine
from ..domain.partitioned import (
    Acquiring,
    AllocationTask,
    AssemblyTask,
    AwaitOrder,
    Envelope,
    LineArrival,
    Move,
    OrderTransfer,
    PartialMessage,
    Pending,
    RouteTask,
    SkuArrival,
)
from .codec import load_order, order_doc
from .shard_codec import decode_handoff, decode_partial, decode_record, encode_handoff, encode_partial, encode_record

RawOf = Callable[[object], "bytes | str | None"]


def _no_raw(event) -> None:
    return None


def event_text(event, raw_of: RawOf = _no_raw) -> str:
    """An input event as JSON text: the input's own bytes when known."""
    raw = raw_of(event)
    if raw is None:
        return event.model_dump_json()
    return raw.decode() if isinstance(raw, bytes) else raw


# -- envelope items ---------------------------------------------------------------------------


def _item_doc(item, raw_of: RawOf) -> dict:
    if isinstance(item, AwaitOrder):
        return {"await": [item.cause_id, item.order_id]}
    event = getattr(item, "event", item)  # a Restricted's input, or the input itself
    raw = event_text(event, raw_of) if hasattr(event, "specversion") else None
    return {"record": encode_record(item, raw)}


def _item_from_doc(doc: dict):
    if "await" in doc:
        return AwaitOrder(*doc["await"])
    return decode_record(doc["record"])


# -- messages ---------------------------------------------------------------------------------


def envelope_doc(env: Envelope, raw_of: RawOf = _no_raw) -> dict:
    doc = {"k": "env", "source": env.source, "cause": env.cause_id, "type": env.cause_type,
           "now": env.now, "publish": env.publish, "item": _item_doc(env.item, raw_of)}
    if env.copies != 1:
        doc["copies"] = env.copies
    if env.own_orders:
        doc["own"] = list(env.own_orders)
    if env.expect:
        doc["expect"] = sorted(env.expect)
    if env.forward_to is not None:
        doc["forward_to"] = env.forward_to
    if env.hands_over is not None:
        doc["hands_over"] = env.hands_over
    return doc


def envelope_from_doc(doc: dict) -> Envelope:
    return Envelope(
        doc["source"], doc["cause"], doc["type"], doc["now"], doc["publish"],
        _item_from_doc(doc["item"]), copies=doc.get("copies", 1),
        own_orders=tuple(doc.get("own", ())), expect=frozenset(doc.get("expect", ())),
        forward_to=doc.get("forward_to"), hands_over=doc.get("hands_over"),
    )


def _line_arrival_doc(arrival: LineArrival) -> dict:
    handoff = None if arrival.handoff is None else encode_handoff(arrival.handoff)
    return {"k": "line", "cause": arrival.cause_id, "order": arrival.order_id,
            "line": arrival.line_id, "handoff": handoff}


def _line_arrival_from_doc(doc: dict) -> LineArrival:
    handoff = None if doc["handoff"] is None else decode_handoff(doc["handoff"])
    return LineArrival(doc["cause"], doc["order"], doc["line"], handoff)


def _sku_arrival_doc(arrival: SkuArrival) -> dict:
    return {"k": "skus", "cause": arrival.cause_id, "skus": list(arrival.skus),
            "exports": encode_handoff(tuple(arrival.exports or ()))}


def _sku_arrival_from_doc(doc: dict) -> SkuArrival:
    return SkuArrival(doc["cause"], tuple(doc["skus"]), decode_handoff(doc["exports"]))


def allocation_doc(message, raw_of: RawOf = _no_raw) -> dict:
    """A record of the allocation topic: an envelope, or a hand-over forwarded by an
    allocation partition."""
    if isinstance(message, LineArrival):
        return _line_arrival_doc(message)
    if isinstance(message, SkuArrival):
        return _sku_arrival_doc(message)
    return envelope_doc(message, raw_of)


def allocation_from_doc(doc: dict):
    kind = doc["k"]
    if kind == "line":
        return _line_arrival_from_doc(doc)
    if kind == "skus":
        return _sku_arrival_from_doc(doc)
    return envelope_from_doc(doc)


def encode_allocation(message, raw_of: RawOf = _no_raw) -> bytes:
    return orjson.dumps(allocation_doc(message, raw_of))


def decode_allocation(payload: bytes | str):
    return allocation_from_doc(orjson.loads(payload))


def encode_partial_message(message: PartialMessage) -> bytes:
    doc = {"partition": message.partition, "cause": message.cause_id, "reason": message.reason,
           "publish": message.publish, "order": message.partial.order_id,
           "partial": encode_partial(message.partial)}
    if message.expect:
        doc["expect"] = sorted(message.expect)
    if message.final:
        doc["final"] = True
    if message.hold:
        doc["hold"] = True
    return orjson.dumps(doc)


def decode_partial_message(payload: bytes | str) -> PartialMessage:
    doc = orjson.loads(payload)
    return PartialMessage(
        doc["partition"], doc["cause"], doc["reason"], doc["publish"],
        decode_partial(doc["order"], doc["partial"]), expect=frozenset(doc.get("expect", ())),
        final=doc.get("final", False), hold=doc.get("hold", False),
    )


def transfer_doc(transfer: OrderTransfer) -> dict:
    order = transfer.order
    doc = {"cause": transfer.cause_id, "time": transfer.time, "order": order.order_id,
           "doc": order_doc(order), "closed_at": order.closed_at, "known": sorted(transfer.known)}
    if transfer.merges:
        doc["merges"] = transfer.merges
    return doc


def transfer_from_doc(doc: dict) -> OrderTransfer:
    # The order is rebuilt as a stored order is (its lines, the owing ones marked), then
    # taken out of the scratch engine that bookkeeping needs.
    scratch = Engine()
    order = load_order(scratch, doc["order"], doc["doc"], doc["closed_at"])
    return OrderTransfer(doc["cause"], doc["time"], order, frozenset(doc["known"]), doc.get("merges", 0))


def encode_transfer(transfer: OrderTransfer) -> bytes:
    return orjson.dumps(transfer_doc(transfer))


def decode_transfer(payload: bytes | str) -> OrderTransfer:
    return transfer_from_doc(orjson.loads(payload))


# -- protocol state ---------------------------------------------------------------------------


def _wait_key_doc(key: tuple) -> list:
    if key[0] == "skus":
        return ["skus", key[1], list(key[2])]
    return list(key)


def _wait_key(doc: list) -> tuple:
    if doc[0] == "skus":
        return ("skus", doc[1], tuple(doc[2]))
    return tuple(doc)


def allocation_state(task: AllocationTask, memo: dict | None = None) -> str:
    """What an allocation task keeps besides its engine: broadcast copies counted, markers
    of groups merging, hand-overs received early, the sources waiting and what they parked.
    `memo` (kept by the caller between calls) holds the documents of parked envelopes: a
    queue parked behind a hand-over is written with every batch until it is resumed, and
    encoding it again each time cost more than the batch's own work."""
    def parked_doc(env: Envelope) -> dict:
        if memo is None:
            return envelope_doc(env)
        kept = memo.get(id(env))
        if kept is None or kept[0] is not env:
            kept = (env, envelope_doc(env))
        current[id(env)] = kept
        return kept[1]

    current: dict = {}
    parked = {source: [parked_doc(env) for env in queue] for source, queue in task.parked.items()}
    if memo is not None:
        memo.clear()
        memo.update(current)
    return orjson.dumps({
        "copies": task.copies,
        "releases": [[cause, list(skus), seen] for (cause, skus), seen in task.releases.items()],
        "acquiring": [[cause, list(skus), a.now, a.publish, sorted(a.sources)]
                      for (cause, skus), a in task.acquiring.items()],
        "sku_arrivals": [_sku_arrival_doc(arrival) for arrival in task.sku_arrivals.values()],
        "line_arrivals": [_line_arrival_doc(arrival) for arrival in task.line_arrivals.values()],
        "orders_arrived": sorted(list(key) for key in task.orders_arrived),
        "waiting": {source: _wait_key_doc(key) for source, key in task.waiting.items()},
        "parked": parked,
    }).decode()


def load_allocation_state(task: AllocationTask, text: str) -> None:
    doc = orjson.loads(text)
    task.copies = dict(doc["copies"])
    task.releases = {(cause, tuple(skus)): seen for cause, skus, seen in doc["releases"]}
    task.acquiring = {(cause, tuple(skus)): Acquiring(now, publish, set(sources))
                      for cause, skus, now, publish, sources in doc["acquiring"]}
    sku_arrivals = [_sku_arrival_from_doc(item) for item in doc["sku_arrivals"]]
    task.sku_arrivals = {(a.cause_id, a.skus): a for a in sku_arrivals}
    line_arrivals = [_line_arrival_from_doc(item) for item in doc["line_arrivals"]]
    task.line_arrivals = {(a.cause_id, a.order_id, a.line_id): a for a in line_arrivals}
    task.orders_arrived = {tuple(key) for key in doc["orders_arrived"]}
    task.waiting = {source: _wait_key(key) for source, key in doc["waiting"].items()}
    task.parked = {source: deque(envelope_from_doc(env) for env in queue)
                   for source, queue in doc["parked"].items()}


def route_state(task: RouteTask) -> str:
    """What a route task keeps besides its router: the inputs held for orders not known
    yet (in arrival order per order, each with whether it was broadcast), its clock, the
    group merges it routed and those it remembers, the transfers waiting for merges not
    routed yet, and the split times of the orders it took in."""
    return orjson.dumps({
        "held": {order_id: [[event.model_dump_json(), broadcast] for event, broadcast in inputs]
                 for order_id, inputs in task.held.items()},
        "clock": task.clock,
        "merges": task.merges,
        "moves": [[move.number, move.time, list(move.skus), move.target] for move in task.moves],
        "transfers_waiting": [transfer_doc(transfer) for transfer in task.transfers_waiting],
        "taken_in": task.taken_in,
    }).decode()


def load_route_state(task: RouteTask, text: str) -> None:
    doc = orjson.loads(text)
    task.held = {order_id: [(parse_event(event), broadcast) for event, broadcast in inputs]
                 for order_id, inputs in doc["held"].items()}
    task.clock = doc["clock"]
    # A state saved before merges were counted has none of these.
    task.merges = doc.get("merges", 0)
    task.moves = [Move(number, time, tuple(skus), target) for number, time, skus, target in doc.get("moves", ())]
    task.transfers_waiting = [transfer_from_doc(item) for item in doc.get("transfers_waiting", ())]
    task.taken_in = dict(doc.get("taken_in", {}))


def assembly_state(task: AssemblyTask) -> str:
    """What an assembly task keeps besides its assembler: the own orders of inputs whose
    parts are not all in, and how many such inputs each order waits for."""
    return orjson.dumps({
        "pending": [[cause, order_id, sorted(p.expect), sorted(p.arrived)]
                    for (cause, order_id), p in task.pending.items()],
        "waiting": task.waiting,
    }).decode()


def load_assembly_state(task: AssemblyTask, text: str) -> None:
    doc = orjson.loads(text)
    task.pending = {(cause, order_id): Pending(frozenset(expect), set(arrived))
                    for cause, order_id, expect, arrived in doc["pending"]}
    task.waiting = dict(doc["waiting"])
