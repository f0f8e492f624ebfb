"""The order-level half of the SKU-sharded recalculator (docs/sharding.md). Pure.

Shards report, per cause, every order they touched with their lines of it as they are now
(`OrderPartial`). The assembler keeps each order's lines per shard and what was last
published for it, and decides, over all the order's lines, what the one-process engine
decides in `Engine._order_changes`: one BackorderChanged per (cause, order) whose status or
published line backorders changed, or that lost a line with a backorder.
"""

from __future__ import annotations

from collections.abc import Iterable

from .model import FULL, NONE, PARTIAL
from .results import LineChange, OrderBackorderChange, OrderPartial, PartialLine


class AssembledOrder:
    __slots__ = ("by_shard", "company_id", "published", "published_dates", "status")

    def __init__(self, company_id: str) -> None:
        self.company_id = company_id
        self.by_shard: dict[int, tuple[PartialLine, ...]] = {}
        self.published: dict[str, int] = {}  # line id → backorder last published
        self.published_dates: dict[str, int] = {}  # line id → expected date last published
        self.status = NONE  # status last published

    def lines(self) -> list[PartialLine]:
        merged = [line for shard in sorted(self.by_shard) for line in self.by_shard[shard]]
        merged.sort(key=lambda line: line.line_id)
        return merged


def status_of(lines: Iterable[PartialLine]) -> str:
    """Rules §7 over published backorders, as `model.backorder_status`."""
    backordered = total = 0
    for line in lines:
        backordered += line.backorder_qty
        total += line.qty
    if backordered == 0:
        return NONE
    return FULL if backordered == total else PARTIAL


class Assembler:
    def __init__(self) -> None:
        self.orders: dict[str, AssembledOrder] = {}

    def assemble(
        self,
        cause_id: str,
        reason: str,
        partials: Iterable[tuple[int, OrderPartial]],
        publish: bool,
    ) -> list[OrderBackorderChange]:
        """Merge one cause's partials from every shard it reached (all of them: a cause is
        assembled once). While the workflow is disabled the lines are kept current but
        nothing is published, so the next publication compares with what was last sent.
        An order its shards evicted (a closed order past its retention) is forgotten once
        the cause is assembled."""
        touched: dict[str, AssembledOrder] = {}
        evicted: set[str] = set()
        dates = False  # publish_expected_date_changes: every shard has the same settings
        for shard, partial in partials:
            dates = dates or partial.publish_dates
            if partial.evicted:
                evicted.add(partial.order_id)
                continue
            order = self.orders.get(partial.order_id)
            if order is None:
                order = self.orders[partial.order_id] = AssembledOrder(partial.company_id)
            if partial.lines:
                order.by_shard[shard] = partial.lines
            else:
                order.by_shard.pop(shard, None)
            touched[partial.order_id] = order
        if not publish:
            self._forget(evicted)
            return []
        changes = []
        for order_id in sorted(touched):
            order = touched[order_id]
            lines = order.lines()
            before, dated = order.published, order.published_dates
            status = status_of(lines)
            changed = status != order.status
            line_changes = []
            for line in lines:
                previous = before.get(line.line_id, 0)
                changed = changed or previous != line.backorder_qty
                previous_date = dated.get(line.line_id)
                if dates and previous_date != line.expected_date:
                    changed = True
                line_changes.append(LineChange(
                    line.line_id, line.sku, line.qty, line.backorder_qty, previous,
                    line.expected_date, previous_date,
                ))
            if not changed:
                present = {line.line_id for line in lines}
                changed = any(v and lid not in present for lid, v in before.items())
            if changed:
                changes.append(OrderBackorderChange(
                    order_id, order.company_id, status, order.status, reason, cause_id,
                    tuple(line_changes),
                ))
                order.status = status
                order.published = {line.line_id: line.backorder_qty for line in lines}
                order.published_dates = {
                    line.line_id: line.expected_date for line in lines
                    if line.expected_date is not None
                }
        self._forget(evicted)
        return changes

    def _forget(self, order_ids: set[str]) -> None:
        for order_id in order_ids:
            self.orders.pop(order_id, None)
