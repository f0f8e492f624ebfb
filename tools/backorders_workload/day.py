"""One day, and several in a row: the concerns assembled."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Iterable, Iterator

from .bad_inputs import BadInputs
from .catalog import Catalog
from .commands import Commands
from .day_base import DayBase
from .order_events import OrderEvents
from .order_plans import OrderPlans
from .orders import CLOSED, _order_status
from .schedule import Schedule
from .shape import DEFAULT_START, TS, WorkloadShape
from .stock_events import StockEvents


class _Day(Schedule, Catalog, OrderPlans, OrderEvents, StockEvents, Commands, BadInputs, DayBase):
    """The whole day: every concern's methods on one state (`DayBase`)."""


def generate_day(seed: int = 42, shape: WorkloadShape = WorkloadShape(),
                 start: datetime = DEFAULT_START) -> list[dict]:
    """The trading day described in the module docstring, as JSON-ready CloudEvent dicts."""
    return _Day(seed, shape, start).run()


def generate_days(days: int, seed: int = 42, shape: WorkloadShape = WorkloadShape(),
                  start: datetime = DEFAULT_START) -> Iterator[list[dict]]:
    """Consecutive trading days for a long run (soak tests and benchmarks), one list per day.

    Day ``d`` is ``generate_day(seed, shape, start + d days)`` (the same catalogue every day)
    with its event ids and order ids prefixed ``d<d>-``, so that nothing is a duplicate of an
    earlier day. From the second day on, it opens at 07:00 with an ``OrderStatusChanged`` to
    ``Completed`` for every order the day before left open: a seller ships (or cancels) every
    order in the end, and orders left open for ever would pile up day after day."""
    left_open: list[str] = []
    for day in range(days):
        moment = start + timedelta(days=day)
        events = [_shifted(event, f"d{day}-") for event in generate_day(seed, shape, moment)]
        closing = (moment - timedelta(hours=1)).strftime(TS)
        opening = [
            {"specversion": "1.0", "id": f"d{day}-close-{n:06d}", "source": "/oms",
             "type": "OrderStatusChanged", "time": closing, "subject": order_id,
             "datacontenttype": "application/json",
             "data": {"order_id": order_id, "order_status": "Completed"}}
            for n, order_id in enumerate(left_open, 1)
        ]
        left_open = _open_orders(events)
        yield opening + events


def _shifted(event: dict, prefix: str) -> dict:
    """An event with its id and the order ids it names prefixed (a raw line stays as it is)."""
    if "__raw__" in event:
        return event
    event = copy.deepcopy(event)
    event["id"] = prefix + event["id"]
    data = event.get("data") or {}
    for name in ("order_id", "new_order_id"):
        if name in data:
            if event.get("subject") == data[name]:
                event["subject"] = prefix + data[name]
            data[name] = prefix + data[name]
    if "order_ids" in data:
        data["order_ids"] = [prefix + order_id for order_id in data["order_ids"]]
    return event


def _open_orders(events: Iterable[dict]) -> list[str]:
    """Orders created or split off in `events` whose last status is not a closed one."""
    status: dict[str, str] = {}
    for event in events:
        if "__raw__" in event:
            continue
        kind, data = event.get("type"), event.get("data") or {}
        if kind == "OrderCreated":
            status.setdefault(data["order_id"], _order_status(data.get("order_status", "InProcess")))
        elif kind == "OrderSplit" and data["order_id"] in status:
            status.setdefault(data["new_order_id"], status[data["order_id"]])
        elif kind == "OrderStatusChanged" and data.get("order_id") in status and "order_status" in data:
            status[data["order_id"]] = _order_status(data["order_status"])
    return [order_id for order_id, value in status.items() if value not in CLOSED]
