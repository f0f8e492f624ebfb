"""A pool: the supply of one SKU (or one SKU in one warehouse) and the calculated lines
that draw on it, kept in priority order.

Plain mode is maintained incrementally. Invariant between calls: in priority order, every
line before the *boundary* is fully allocated, the boundary line holds anything from 0 to
less than its qty, and every line after it holds 0 (`boundary is None`: all lines are full).
Structural changes keep that invariant and may leave the pool *unsettled* (allocated total
differs from what the supply allows); `settle()` then walks from the boundary, forwards to
hand out supply or backwards to take it back, touching only lines whose allocation changes.

Costs (n lines in the pool, k lines whose allocation changes):
- insert / remove a line: O(log n) (sorted list), settle afterwards O(log n + k);
- supply change: O(1), settle O(log n + k);
- freezing or unfreezing m lines (max_days_to_be_back): O(m log n), then one settle.
Fully-shippable mode has no such prefix structure: any change marks the pool stale and
`settle()` recomputes it in O(n).

Every line whose allocation may have changed is added to `dirty`, the owning SKU's set of
lines to look at when the SKU is next recalculated.

A pool knows of its lines only what `PoolLine` names (`model.Line` has it all), so this
module needs no other module of the core: the model refers to the pool that holds a line.
"""

from __future__ import annotations

from typing import Protocol

from sortedcontainers import SortedList


class _Dated(Protocol):
    order_date: int  # µs: a line is frozen by its order's date (max_days_to_be_back)


class PoolLine(Protocol):
    """What a pool reads and writes of the lines it holds."""

    order: _Dated
    qty: int
    published: int  # a frozen line holds what it does not publish: qty - published
    key: tuple | None  # its priority key, set before it is inserted
    alloc: int  # written by the pool
    frozen: bool  # written by the pool


class Pool:
    __slots__ = (
        "sku",
        "warehouse_id",
        "supply",
        "frozen_used",
        "queue",
        "by_key",
        "filled",
        "boundary",
        "dirty",
        "fully_shippable",
        "stale",
        "live_dates",
        "frozen_dates",
        "frozen",
    )

    def __init__(
        self,
        sku: str,
        warehouse_id: str | None,
        supply: int,
        dirty: set[PoolLine],
        *,
        fully_shippable: bool = False,
        track_dates: bool = False,
    ) -> None:
        self.sku = sku
        self.warehouse_id = warehouse_id
        self.supply = supply  # physical supply already floored at 0 (rules §3)
        self.frozen_used = 0  # what frozen lines hold: sum of qty - published backorder
        self.queue: SortedList = SortedList()  # priority keys of live (non-frozen) lines
        self.by_key: dict[tuple, PoolLine] = {}
        self.filled = 0  # sum of live allocations
        self.boundary: tuple | None = None
        self.dirty = dirty
        self.fully_shippable = fully_shippable
        self.stale = False
        # (order_date, key) of live and frozen lines, only when max_days_to_be_back is set.
        self.live_dates: SortedList | None = SortedList() if track_dates else None
        self.frozen_dates: SortedList | None = SortedList() if track_dates else None
        self.frozen: dict[tuple, PoolLine] = {}

    # -- reading -----------------------------------------------------------------------

    @property
    def available(self) -> int:
        """Supply left for live lines once frozen lines have taken theirs."""
        return max(0, self.supply - self.frozen_used)

    @property
    def leftover(self) -> int:
        """Supply nobody in this pool uses (what replacement-SKU lines may draw on)."""
        return max(0, self.available - self.filled)

    def __len__(self) -> int:
        return len(self.queue)

    def lines_in_order(self):
        by_key = self.by_key
        return (by_key[key] for key in self.queue)

    def short_lines(self):
        """Live lines not fully allocated, in priority order (the pool must be settled)."""
        by_key = self.by_key
        if self.fully_shippable:
            return (line for line in self.lines_in_order() if line.alloc < line.qty)
        if self.boundary is None:
            return iter(())
        start = self.queue.bisect_left(self.boundary)
        return (by_key[key] for key in self.queue.islice(start))

    # -- structural changes --------------------------------------------------------------

    def insert(self, line: PoolLine) -> None:
        """Add a live line; `line.key` must be set. The pool is left unsettled."""
        key = line.key
        self.queue.add(key)
        self.by_key[key] = line
        if self.live_dates is not None:
            self.live_dates.add((line.order.order_date, key))
        self.dirty.add(line)
        self.stale = True
        if self.fully_shippable:
            line.alloc = 0
            return
        boundary = self.boundary
        if boundary is None or key < boundary:
            # Ahead of the boundary every line is full; so is this one until settle() takes
            # back whatever the supply cannot cover, from the end of the queue.
            line.alloc = line.qty
            self.filled += line.qty
        else:
            line.alloc = 0

    def remove(self, line: PoolLine) -> None:
        """Take a line (live or frozen) out of the pool. The pool is left unsettled."""
        self.dirty.add(line)
        if line.frozen:
            self._unfreeze_bookkeeping(line)
            del self.frozen[line.key]
            self.stale = True
            return
        self._detach_live(line)

    def set_supply(self, supply: int) -> None:
        if supply != self.supply:
            self.supply = supply
            self.stale = True

    def adjust_frozen(self, delta: int) -> None:
        """A frozen line's published backorder changed, so what it holds changed by -delta."""
        self.frozen_used -= delta
        self.stale = True

    def refresh_frozen(self, cutoff: int | None) -> None:
        """Freeze live lines dated before `cutoff`, unfreeze frozen ones dated on or after."""
        if self.live_dates is None:
            return
        if cutoff is None:
            cutoff = -(1 << 62)
        live_dates, frozen_dates = self.live_dates, self.frozen_dates
        while live_dates and live_dates[0][0] < cutoff:
            _, key = live_dates[0]
            line = self.by_key[key]
            self._detach_live(line)
            line.frozen = True
            self.frozen[key] = line
            frozen_dates.add((line.order.order_date, key))
            self.frozen_used += line.qty - line.published
            self.stale = True
        while frozen_dates and frozen_dates[-1][0] >= cutoff:
            _, key = frozen_dates[-1]
            line = self.frozen.pop(key)
            self._unfreeze_bookkeeping(line)
            self.insert(line)
            self.stale = True

    def _unfreeze_bookkeeping(self, line: PoolLine) -> None:
        self.frozen_dates.remove((line.order.order_date, line.key))
        self.frozen_used -= line.qty - line.published
        line.frozen = False

    def _detach_live(self, line: PoolLine) -> None:
        key = line.key
        queue = self.queue
        index = queue.bisect_left(key)
        if not self.fully_shippable and key == self.boundary:
            # The next line holds 0, so it is a valid boundary.
            self.boundary = queue[index + 1] if index + 1 < len(queue) else None
        self.filled -= line.alloc
        self.stale = True
        del queue[index]
        del self.by_key[key]
        if self.live_dates is not None:
            self.live_dates.remove((line.order.order_date, key))
        line.alloc = 0

    # -- allocation ----------------------------------------------------------------------

    def settle(self) -> None:
        """Bring the allocation in line with the supply (rules §6)."""
        if self.fully_shippable:
            if self.stale:
                self._recompute_fully_shippable()
            return
        self.stale = False
        target = self.available
        if self.filled < target and self.boundary is not None:
            self._fill(target)
        elif self.filled > target:
            self._drain(target)

    def _fill(self, target: int) -> None:
        queue, by_key, dirty = self.queue, self.by_key, self.dirty
        filled = self.filled
        for key in queue.islice(queue.bisect_left(self.boundary)):
            line = by_key[key]
            give = min(line.qty - line.alloc, target - filled)
            if give:
                line.alloc += give
                filled += give
                dirty.add(line)
            if line.alloc < line.qty:
                self.boundary = key
                break
        else:
            self.boundary = None
        self.filled = filled

    def _drain(self, target: int) -> None:
        queue, by_key, dirty = self.queue, self.by_key, self.dirty
        if self.boundary is None:
            stop = len(queue)
        else:
            index = queue.bisect_left(self.boundary)
            stop = index + 1 if by_key[self.boundary].alloc > 0 else index
        filled = self.filled
        # Every line walked here holds something: those before the boundary are full.
        for key in queue.islice(0, stop, reverse=True):
            line = by_key[key]
            take = min(line.alloc, filled - target)
            line.alloc -= take
            filled -= take
            dirty.add(line)
            self.boundary = key
            if filled == target:
                break
        self.filled = filled

    def _recompute_fully_shippable(self) -> None:
        """First pass: whole lines that fit, in priority order; second pass: what is left
        goes, in priority order, to the lines still short."""
        left = self.available
        plan: list[tuple[PoolLine, int]] = []
        for line in self.lines_in_order():
            if line.qty <= left:
                plan.append((line, line.qty))
                left -= line.qty
            else:
                plan.append((line, 0))
        filled = self.available - left
        dirty = self.dirty
        for line, given in plan:
            if given < line.qty and left:
                extra = min(line.qty - given, left)
                given += extra
                left -= extra
                filled += extra
            if line.alloc != given:
                line.alloc = given
                dirty.add(line)
        self.filled = filled
        self.stale = False
