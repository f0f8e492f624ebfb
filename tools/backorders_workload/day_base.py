"""The generator's state and plumbing: the seeded random source, event ids and times,
the queue of follow-ups, the picks every concern uses."""

from __future__ import annotations

import heapq
from bisect import bisect_right
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any, Callable

from .orders import Order
from .shape import DAY_SECONDS, TS, WorkloadShape

SOURCES = {
    "InventoryAdjusted": "/wms", "POReceived": "/wms", "WarehouseUpserted": "/wms",
    "PurchaseOrderUpdated": "/purchasing", "ContainerUpdated": "/purchasing",
}  # everything else (orders, products, commands) comes from the OMS


class DayBase:
    def __init__(self, seed: int, shape: WorkloadShape, start: datetime) -> None:
        if shape.orders < 0 or shape.skus < 2 or shape.warehouses < 1 or shape.companies < 1:
            raise ValueError(f"unsupported workload shape: {shape}")
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self.start = start.astimezone(UTC).replace(microsecond=0)
        self.seed = seed
        self.shape = shape
        self.rng = Random(seed)
        self.k = shape.orders / 5000  # order-driven volumes scale with the order count
        self.events: list[dict] = []
        self.n = 0
        self.queue: list[tuple[int, int, Callable, tuple]] = []
        self.seq = 0
        self.bad_ids: set[str] = set()
        self.orders: dict[str, Order] = {}
        self.order_ids: list[str] = []
        self.avail: dict[str, int] = {}  # the rough running allocation's view of supply
        self.on_hand: dict[str, int] = {}  # physical units in the main warehouse
        self.po_open: dict[str, dict[str, int]] = {}  # po_id -> sku -> qty ordered
        self._ts_cache: dict[int, str] = {}

    def ts(self, s: int) -> str:
        text = self._ts_cache.get(s)
        if text is None:
            text = self._ts_cache[s] = (self.start + timedelta(seconds=s)).strftime(TS)
        return text

    def emit(self, t: int, type_: str, data: dict, subject: str | None = None) -> dict:
        self.n += 1
        ev = {"specversion": "1.0", "id": f"ev-{self.seed}-{self.n:07d}",
              "source": SOURCES.get(type_, "/oms"), "type": type_, "time": self.ts(t)}
        if subject is not None:
            ev["subject"] = subject
        ev["datacontenttype"] = "application/json"
        ev["data"] = data
        self.events.append(ev)
        return ev

    def at(self, t: int, fn: Callable, *args: Any) -> None:
        # Follow-ups that would fall after the business day simply do not happen today.
        if t < DAY_SECONDS:
            self.seq += 1
            heapq.heappush(self.queue, (t, self.seq, fn, args))

    def below(self, n: int) -> int:
        """A uniform int in [0, n): Random.randrange is several times slower in the hot path."""
        return int(self.rng.random() * n)

    def pick(self, seq: Any) -> Any:
        return seq[int(self.rng.random() * len(seq))]

    def pick_sku(self) -> str:
        return self.ranked[bisect_right(self.pop_cum, self.rng.random() * self.pop_total)]

    def pick_open_order(self, tries: int = 30) -> Order | None:
        if not self.order_ids:
            return None
        for _ in range(tries):
            order = self.orders[self.rng.choice(self.order_ids)]
            if order.open:
                return order
        return None

    def line_dict(self, line_id: str, sku: str, qty: int) -> dict:
        return {"line_id": line_id, "sku": sku, "qty": qty, "unit_price": self.price[sku],
                "name": self.names[sku]}
