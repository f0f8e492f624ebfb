"""The deliberately bad inputs of the day (the package docstring lists them) and how
to tell them apart afterwards."""

from __future__ import annotations

import copy
from typing import Iterable

from .day_base import DayBase
from .shape import FIRST_ORDER_ID, KNOWN_TYPES


def classify_bad_events(events: Iterable[dict]) -> dict[int, str]:
    """Index -> kind (``BAD_EVENT_KINDS``) of the deliberately invalid inputs of a generated day.

    Found from the stream itself: a ``__raw__`` line, an id seen before, a type outside the
    contract, a quantity of 0, or an ``OrderStatusChanged`` for an order never created.
    """
    seen: set[str] = set()
    created: set[str] = set()
    bad: dict[int, str] = {}
    for i, ev in enumerate(events):
        if "__raw__" in ev:
            bad[i] = "not-json"
            continue
        if ev["id"] in seen:
            bad[i] = "duplicate-id"
            continue
        seen.add(ev["id"])
        type_, data = ev["type"], ev.get("data") or {}
        if type_ not in KNOWN_TYPES:
            bad[i] = "unknown-type"
        elif any(line.get("qty") == 0 for line in data.get("lines") or [data.get("line") or {}]):
            bad[i] = "zero-qty"
        elif type_ == "OrderStatusChanged" and data.get("order_id") not in created:
            bad[i] = "unknown-order"
        elif type_ == "OrderCreated":
            created.add(data["order_id"])
        elif type_ == "OrderSplit":
            created.add(data["new_order_id"])
    return bad


class BadInputs(DayBase):
    def bad_not_json(self, t: int) -> None:
        # A producer that died mid-write: the envelope of an event that never finished.
        self.n += 1
        text = (f'{{"specversion":"1.0","id":"ev-{self.seed}-{self.n:07d}","source":"/oms",'
                f'"type":"OrderCreated","time":"{self.ts(t)}","subject":"51')
        self.events.append({"__raw__": text})

    def bad_zero_qty(self, t: int) -> None:
        order = self.pick_open_order()
        if order is None:
            po_id = next(iter(self.po_open))
            ev = self.emit(t, "POReceived", {"po_id": po_id, "warehouse_id": self.warehouses[0][0],
                                             "lines": [{"sku": next(iter(self.po_open[po_id])), "qty": 0}]}, po_id)
        else:
            lid = str(order.next_line)
            order.next_line += 1  # the id is burnt, so no later valid ItemAdded reuses it
            line = self.line_dict(lid, self.pick_sku(), 0)
            ev = self.emit(t, "ItemAdded", {"order_id": order.id, "line": line}, order.id)
        self.bad_ids.add(ev["id"])

    def bad_unknown_order(self, t: int) -> None:
        # Below the first order id, so it never exists.
        order_id = str(FIRST_ORDER_ID - self.rng.randint(1, 99999))
        ev = self.emit(t, "OrderStatusChanged", {"order_id": order_id, "order_status": "Completed"}, order_id)
        self.bad_ids.add(ev["id"])

    def bad_unknown_type(self, t: int) -> None:
        order = self.pick_open_order()
        order_id = order.id if order else str(FIRST_ORDER_ID)
        ev = self.emit(t, "OrderNoteAdded", {"order_id": order_id, "note": "Customer asked for gift wrap"},
                       order_id)
        self.bad_ids.add(ev["id"])

    def insert_duplicate(self) -> None:
        effectful = {"InventoryAdjusted", "POReceived", "OrderCreated", "OrderSplit", "ItemAdded"}
        first_day = next((i for i, e in enumerate(self.events) if e.get("time", "") > self.ts(0)), None)
        if first_day is None:
            return
        i = self.rng.randrange(first_day, len(self.events))
        while i >= first_day:
            ev = self.events[i]
            if ev.get("type") in effectful and ev["id"] not in self.bad_ids:
                # Right after the original, so time stays non-decreasing.
                self.events.insert(i + 1, copy.deepcopy(ev))
                return
            i -= 1
