"""Commands through the day: full recalculations and the manual actions."""

from __future__ import annotations

from .day_base import DayBase


class Commands(DayBase):
    def recalculate(self, t: int) -> None:
        self.emit(t, "RecalculateBackorders", {"order_ids": [], "skus": []})

    def pick_open_ids(self) -> list[str]:
        ids = []
        for _ in range(self.rng.randint(1, 3)):
            order = self.pick_open_order()
            if order is not None and order.id not in ids:
                ids.append(order.id)
        return ids

    def mark_backorder(self, t: int) -> None:
        if ids := self.pick_open_ids():
            self.emit(t, "MarkBackorder", {"order_ids": ids})

    def mark_not_backorder(self, t: int) -> None:
        if ids := self.pick_open_ids():
            self.emit(t, "MarkNotBackorder", {"order_ids": ids})

    def reallocate(self, t: int) -> None:
        rng, order = self.rng, self.pick_open_order()
        if order is None:
            return
        ids = list(order.lines)
        chosen = sorted(rng.sample(ids, rng.randint(1, len(ids))))
        lines = [{"line_id": lid, "backorder_qty": rng.randint(0, order.lines[lid][1])} for lid in chosen]
        self.emit(t, "ReallocateBackorder", {"order_id": order.id, "lines": lines}, order.id)
