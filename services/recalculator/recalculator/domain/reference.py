"""Rules §3–§6 computed from scratch for one SKU, straight from the text of the rules.

This is the yardstick for the incremental pools: the property tests compare the two, the
benchmark times both, and `Engine(incremental=False)` runs on it. It reads an engine's
inputs (orders, stock, settings, published values) and changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import policy
from .incoming import arrivals
from .model import Line

if TYPE_CHECKING:
    from .base import EngineBase


def allocate(lines_in_priority: list[Line], supply: int, fully_shippable: bool) -> dict:
    """Rules §6 for one pool: line → allocated quantity."""
    given = {}
    left = supply
    if not fully_shippable:
        for line in lines_in_priority:
            take = min(line.qty, left)
            given[line] = take
            left -= take
        return given
    for line in lines_in_priority:
        if line.qty <= left:
            given[line] = line.qty
            left -= line.qty
        else:
            given[line] = 0
    for line in lines_in_priority:
        if given[line] < line.qty and left:
            extra = min(line.qty - given[line], left)
            given[line] += extra
            left -= extra
    return given


class _PoolView:
    """One pool recomputed from scratch: its calculated lines, frozen lines and allocation."""

    def __init__(self, engine: EngineBase, sku: str, warehouse: str | None, now: int) -> None:
        settings = engine.settings
        cutoff = policy.frozen_cutoff(settings, now)
        live: list[Line] = []
        self.frozen: set[Line] = set()
        frozen_used = 0
        for line in engine.lines_by_sku.get(sku, ()):
            calculated, pool_wh = policy.pool_warehouse(
                settings, engine.warehouse_types, line.order
            )
            if not calculated or pool_wh != warehouse:
                continue
            if cutoff is not None and line.order.order_date < cutoff:
                self.frozen.add(line)
                frozen_used += line.qty - line.published
            else:
                live.append(line)
        live.sort(key=lambda line: policy.priority_key(settings, line.order, line))
        self.live = live
        supply = policy.pool_supply(
            settings, engine.warehouse_types, engine.stock.get(sku), warehouse
        )
        self.available = max(0, supply - frozen_used)
        self.alloc = allocate(live, self.available, settings.prioritize_fully_shippable)
        self.leftover = max(0, self.available - sum(self.alloc.values()))


def sku_targets(engine: EngineBase, sku: str, now: int) -> list[tuple[Line, int]]:
    """The backorder quantity every line of `sku` should publish at `now`."""
    settings = engine.settings
    warehouses = set()
    calculated_wh: dict[Line, str | None] = {}
    for line in engine.lines_by_sku.get(sku, ()):
        calculated, warehouse = policy.pool_warehouse(settings, engine.warehouse_types, line.order)
        if calculated:
            calculated_wh[line] = warehouse
            warehouses.add(warehouse)
    views = {wh: _PoolView(engine, sku, wh, now) for wh in warehouses}

    draws: dict[Line, int] = {}
    replacement = engine.replacements.get(sku)
    if settings.consider_replacement_sku_qty and replacement is not None:
        for warehouse in warehouses:
            left = _PoolView(engine, replacement, warehouse, now).leftover
            short = []  # (line, its primary allocation)
            for other in engine.referrers.get(replacement, ()):
                view = views[warehouse] if other == sku else _PoolView(engine, other, warehouse, now)
                short.extend((line, view.alloc[line]) for line in view.live if view.alloc[line] < line.qty)
            short.sort(key=lambda pair: policy.priority_key(settings, pair[0].order, pair[0]))
            for line, primary in short:
                give = min(line.qty - primary, left)
                left -= give
                if line.sku == sku:
                    draws[line] = give

    targets = []
    for line in engine.lines_by_sku.get(sku, ()):
        if line not in calculated_wh:
            targets.append((line, 0))
            continue
        view = views[calculated_wh[line]]
        if line in view.frozen:
            targets.append((line, line.published))
        else:
            targets.append((line, line.qty - view.alloc[line] - draws.get(line, 0)))
    return targets



def sku_available(engine: EngineBase, sku: str, now: int) -> int:
    """What `Engine.available` gives, from scratch: per pool the SKU is sold from, the supply
    its own lines leave, less what short lines of the SKUs it replaces would draw on it."""
    settings = engine.settings
    drawing = engine.referrers.get(sku, ()) if settings.consider_replacement_sku_qty else ()
    total = 0
    for warehouse in policy.supply_warehouses(settings, engine.warehouse_types, engine.stock.get(sku)):
        left = _PoolView(engine, sku, warehouse, now).leftover
        for other in drawing:
            view = _PoolView(engine, other, warehouse, now)
            left -= sum(line.qty - view.alloc[line] for line in view.live)
        total += max(0, left)
    return total


def expected_dates(engine: EngineBase, sku: str) -> dict[Line, int | None]:
    """docs/behaviour.md, "Expected date per line", walked from scratch for one SKU: the
    calculated lines with a published backorder, in priority order, take the dated supply
    on its way, soonest first; each line gets the date of the arrival that covers its last
    backordered unit (None past the last one). Every other line of the SKU gets None."""
    waiting = sorted(
        (line for line in engine.lines_by_sku.get(sku, ())
         if line.pool is not None and line.published > 0),
        key=lambda line: line.key,
    )
    supply = arrivals(engine.incoming.get(sku), engine.settings.use_shipping_containers_for_po)
    dates: dict[Line, int | None] = {
        line: None for line in engine.lines_by_sku.get(sku, ())
    }
    arrival, left = 0, supply[0][1] if supply else 0
    for line in waiting:
        need = line.published
        while arrival < len(supply) and need > left:
            need -= left
            arrival += 1
            left = supply[arrival][1] if arrival < len(supply) else 0
        if arrival == len(supply):
            break
        left -= need
        dates[line] = supply[arrival][0]
    return dates
