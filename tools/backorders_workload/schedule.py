"""The run of the day: the catalog, the plans, then every timed event in time order."""

from __future__ import annotations

import heapq

from .day_base import DayBase
from .shape import BAD_EVENT_KINDS, DAY_SECONDS


class Schedule(DayBase):
    def run(self) -> list[dict]:
        self.catalog()
        plans = self.plan_orders()
        self.preamble(plans)
        self.schedule(plans)
        while self.queue:
            t, _, fn, args = heapq.heappop(self.queue)
            fn(t, *args)
        for _ in range(self.bad_count("duplicate-id")):
            self.insert_duplicate()
        return self.events

    def bad_count(self, kind: str) -> int:
        return sum(1 for i in range(self.shape.bad_events) if BAD_EVENT_KINDS[i % 5] == kind)

    def schedule(self, plans: list) -> None:
        rng, k = self.rng, self.k
        for t, data, lines in plans:
            self.at(t, self.order_created, data, lines)
        for po_id, lines in self.receipts:
            self.at(rng.randrange(600, DAY_SECONDS), self.po_received, po_id, lines)
        for _ in range(round(150 * k)):
            self.at(rng.randrange(60, DAY_SECONDS), self.inventory_delta)
        few = max(1, round(k))
        for fn in (self.mark_backorder, self.mark_not_backorder, self.reallocate):
            for _ in range(rng.randint(3, 6) * few):
                self.at(rng.randrange(1800, DAY_SECONDS), fn)
        bad = {"not-json": self.bad_not_json, "zero-qty": self.bad_zero_qty,
               "unknown-order": self.bad_unknown_order, "unknown-type": self.bad_unknown_type}
        for i in range(self.shape.bad_events):
            kind = BAD_EVENT_KINDS[i % 5]
            if kind in bad:
                self.at(rng.randrange(900, DAY_SECONDS - 60), bad[kind])
        every = self.shape.recalc_every_minutes * 60
        if every > 0:
            t = every
            while t <= DAY_SECONDS:
                # Pushed directly: the last run sits at the end of the day, after everything else.
                self.seq += 1
                heapq.heappush(self.queue, (t, self.seq, self.recalculate, ()))
                t += every
