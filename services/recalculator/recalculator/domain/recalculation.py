"""Allocation and recalculation, shared by the roles that allocate (`Engine` and a SKU
shard, `ShardEngine`): lines placed in pools, SKUs recalculated, the backorders and SKU
positions that changed, and the values held back while the workflow is disabled.

What differs between the two is only what they say of orders: the engine publishes each
order's change (`Engine._order_changes`), a shard reports its part of each order it touched
(`ShardEngine._order_partials`).
"""

from __future__ import annotations

import heapq

from . import policy
from .base import EngineBase, EventScope
from .dating import ExpectedDates
from .model import Line
from .pool import Pool
from .reference import sku_available, sku_targets
from .results import (
    APPLIED,
    OrderBackorderChange,
    OrderPartial,
    Outcome,
    ProductBackorderChange,
    SkuPositionChange,
)


class AllocatingEngine(ExpectedDates, EngineBase):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_dates()

    def _outcome(self, scope: EventScope, event_type: str, event_id: str, now: int) -> Outcome:
        if not self.settings.enable_backorder_workflow:
            self._update_dates()
            self._hold(scope)
            return Outcome(APPLIED, partials=self._order_partials(scope))
        recalculated = self._recalculate(scope.recalc, now) if scope.recalc else set()
        if self.owing and not self.owing.keys().isdisjoint(recalculated):
            self._settle_closed(recalculated)
        self._update_dates()
        return Outcome(
            APPLIED,
            None,
            self._order_changes(scope, event_type, event_id),
            self._product_changes(scope),
            self._position_changes(recalculated, scope, now),
            self._order_partials(scope),
        )

    def _order_changes(self, scope: EventScope, event_type: str,
                event_id: str) -> list[OrderBackorderChange]:
        """The orders' changes this role publishes (none in a shard)."""
        return []

    def _order_partials(self, scope: EventScope) -> list[OrderPartial]:
        """The order partials this role reports (a shard's only)."""
        return []

    def _set_manual(self, line: Line, value: int) -> None:
        super()._set_manual(line, value)
        self.dirty[line.sku].add(line)  # the next recalculation overwrites it

    # -- lines in pools ----------------------------------------------------------------------

    def _place(self, line: Line) -> None:
        order = line.order
        calculated, warehouse = policy.pool_warehouse(
            self.settings, self.warehouse_types, order
        )
        self.dirty[line.sku].add(line)
        self._dates_line(line)
        if not calculated:
            line.pool = None
            line.key = None
            return
        pool = self.pools.get((line.sku, warehouse))
        if pool is None:
            pool = self._new_pool(line.sku, warehouse)
        line.key = policy.priority_key(self.settings, order, line)
        line.pool = pool
        pool.insert(line)

    def _unplace(self, line: Line) -> None:
        if line.pool is not None:
            line.pool.remove(line)
            line.pool = None
        self.dirty[line.sku].add(line)
        self._dates_line(line)

    def _replace(self, line: Line) -> None:
        """Re-place a line whose order changed, unless its pool and key stay the same."""
        calculated, warehouse = policy.pool_warehouse(
            self.settings, self.warehouse_types, line.order
        )
        pool = line.pool
        if calculated and pool is not None and pool.warehouse_id == warehouse:
            if policy.priority_key(self.settings, line.order, line) == line.key:
                return
        self._unplace(line)
        self._place(line)

    def _new_pool(self, sku: str, warehouse: str | None) -> Pool:
        settings = self.settings
        pool = Pool(
            sku,
            warehouse,
            policy.pool_supply(settings, self.warehouse_types, self.stock.get(sku), warehouse),
            self.dirty[sku],
            fully_shippable=settings.prioritize_fully_shippable,
            track_dates=settings.max_days_to_be_back is not None,
        )
        self.pools[(sku, warehouse)] = pool
        self.pools_by_sku[sku][warehouse] = pool
        return pool

    def rebuild(self) -> None:
        for line_set in self.dirty.values():
            line_set.clear()
        self.pools.clear()
        self.pools_by_sku.clear()
        for order_id in sorted(self.orders):
            for line in self.orders[order_id].lines.values():
                line.pool = None
                line.frozen = False
                line.alloc = 0
                self._place(line)
        self._reset_dates()

    # -- recalculation ---------------------------------------------------------------------------

    def _recalculate(self, skus: set[str], now: int) -> set[str]:
        """Recalculate `skus` (and what the rules add to them); returns every SKU recalculated."""
        if self.settings.consider_replacement_sku_qty:
            # Their short lines draw on the leftover of the SKUs recalculated here (one hop).
            skus = self._recalculation_set(skus)
        for sku in sorted(skus) if len(skus) > 1 else skus:
            if self.incremental:
                targets = self._incremental_targets(sku, now)
            else:
                self.dirty[sku].clear()
                targets = sku_targets(self, sku, now)
            for line, target in targets:
                if line.manual:
                    line.manual = False
                    self._touch(line.order)
                self._set_published(line, target)
        return skus

    def prepare(self, pool: Pool, now: int) -> None:
        """Make a pool's allocation current for a recalculation at `now`."""
        if pool.live_dates is not None:  # only tracked with max_days_to_be_back
            pool.refresh_frozen(policy.frozen_cutoff(self.settings, now))
        pool.settle()

    def _incremental_targets(self, sku: str, now: int) -> list[tuple[Line, int]]:
        pools = self.pools_by_sku.get(sku, {})
        dirty = self.dirty[sku]
        replacement = self.settings.consider_replacement_sku_qty and sku in self.replacements
        if not dirty and not replacement and not any(
            pool.stale or pool.live_dates is not None for pool in pools.values()
        ):
            return []  # nothing changed since the last recalculation (a periodic run)
        for pool in pools.values():
            self.prepare(pool, now)
        candidates = list(dirty)
        dirty.clear()
        extra: dict[Line, int] = {}
        if replacement:
            extra = self.replacement_draws(sku, now)
            for pool in pools.values():
                candidates.extend(pool.short_lines())
        targets = []
        for line in candidates:
            if not line.live or line.sku != sku:
                continue
            if line.pool is None:
                targets.append((line, 0))  # not calculated (rules §4)
            elif line.frozen:
                targets.append((line, line.published))
            else:
                targets.append((line, line.qty - line.alloc - (extra.get(line, 0) if extra else 0)))
        return targets

    @staticmethod
    def target(line: Line, from_replacement: int = 0) -> int:
        if line.pool is None:
            return 0  # not calculated (rules §4)
        if line.frozen:
            return line.published
        return line.qty - line.alloc - from_replacement

    def replacement_draws(self, sku: str, now: int) -> dict[Line, int]:
        """Rules §6: short lines of every SKU sharing `sku`'s replacement draw on the
        replacement's leftover, in one priority order; returns the draws of `sku`'s lines."""
        replacement = self.replacements[sku]
        draws: dict[Line, int] = {}
        for warehouse in self.pools_by_sku.get(sku, {}):
            left = self.leftover(replacement, warehouse, now)
            if not left:
                continue
            group = []
            for other in sorted(self.referrers.get(replacement, ())):
                pool = self.pools.get((other, warehouse))
                if pool is not None:
                    self.prepare(pool, now)
                    group.append(pool.short_lines())
            for line in heapq.merge(*group, key=_line_key):
                give = min(line.qty - line.alloc, left)
                left -= give
                if line.sku == sku:
                    draws[line] = give
                if not left:
                    break
        return draws

    def available(self, sku: str, now: int) -> int:
        """Supply of `sku` that no line holds, summed over the pools it is sold from: each
        pool's leftover, less what short lines of the SKUs it replaces draw on it (with
        consider_replacement_sku_qty). O(warehouses of the SKU), plus the short lines of
        those other SKUs in replacement mode."""
        if not self.incremental:
            return sku_available(self, sku, now)
        drawing = self.referrers.get(sku) if self.settings.consider_replacement_sku_qty else None
        total = 0
        for warehouse in policy.supply_warehouses(
            self.settings, self.warehouse_types, self.stock.get(sku)
        ):
            left = self.leftover(sku, warehouse, now)
            for other in drawing or ():
                pool = self.pools.get((other, warehouse))
                if pool is None or left <= 0:
                    continue
                self.prepare(pool, now)
                for line in pool.short_lines():
                    left -= line.qty - line.alloc
                    if left <= 0:
                        break
            total += max(0, left)
        return total

    def leftover(self, sku: str, warehouse: str | None, now: int) -> int:
        pool = self.pools.get((sku, warehouse))
        if pool is None:
            return policy.pool_supply(
                self.settings, self.warehouse_types, self.stock.get(sku), warehouse
            )
        self.prepare(pool, now)
        return pool.leftover

    # -- what is published ------------------------------------------------------------------------

    def _hold(self, scope: EventScope) -> None:
        for order_id, snapshot in scope.orders_before.items():
            if order_id not in self.held_orders:
                self.held_orders[order_id] = snapshot
                self.changes.held = True
        for sku, total in scope.totals_before.items():
            if sku not in self.held_totals:
                self.held_totals[sku] = total
                self.changes.held = True

    def _product_changes(self, scope: EventScope):
        changes = []
        held = self.held_totals
        for sku, before in sorted(scope.totals_before.items()):
            if held and sku in held:
                before = held.pop(sku)
                self.changes.held = True
            if self.totals[sku] != before:
                changes.append(ProductBackorderChange(sku, self.totals[sku], before))
        return changes

    def _position_changes(self, recalculated: set[str], scope: EventScope, now: int):
        """One SkuPositionChange per SKU whose (available, backorder) differs from what was
        last published for it, by SKU. Available is evaluated for SKUs recalculated by this
        event; a total changed without a recalculation (a manual action) keeps the last
        published available. A SKU's first position is published even when it is (0, 0),
        so consumers learn that it exists, unless the engine knows nothing of the SKU."""
        skus = recalculated | scope.totals_before.keys() if scope.totals_before else recalculated
        if not skus:
            return []
        changes = []
        positions, totals = self.positions, self.totals
        for sku in sorted(skus) if len(skus) > 1 else skus:
            before = positions.get(sku)
            if before is None or sku in recalculated:
                available = self.available(sku, now)
            else:
                available = before[0]
            current = (available, totals.get(sku, 0))
            if current == before:
                continue
            if before is None:
                if current == (0, 0) and sku not in self.stock and sku not in self.lines_by_sku:
                    continue  # a SKU named by a command that nothing else ever mentioned
                before = (0, 0)
            positions[sku] = current
            self.changes.positions.add(sku)
            changes.append(SkuPositionChange(sku, current[0], current[1], before[0], before[1]))
        return changes


def _line_key(line: Line) -> tuple:
    return line.key
