"""One SKU's waiting lines against its incoming supply: each line's expected date
(docs/behaviour.md, "Expected date per line").

The lines that wait (calculated, with a published backorder) sit in priority order with
their backordered units, in blocks that each know their sum, so the prefix sum of units up
to a line, and the first line whose prefix reaches a given unit, cost O(n/B + B) in C-level
sums and bisects (n lines, blocks of about B). The arrivals (dated supply, soonest first)
cut the queue into *segments*: arrival k covers the lines whose last backordered unit falls
within its cumulative quantity, so segment k starts at the first line whose prefix sum
passes the quantity of the arrivals before it; after the last arrival, lines have no date.
A line's date is its segment's: a bisect over the A + 1 segment starts.

After a change (units of some lines, or the supply) the segments are found again,
O(A × (n/B + B)), and only the lines whose segment date differs from before are looked at
(`changed_between`). Pure.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import accumulate

FIRST: tuple = ()  # before every priority key
END: tuple = (9,)  # after every priority key (they start with 0 or 1)
_BLOCK = 256


class Schedule:
    __slots__ = ("dates", "keys", "lines", "maxes", "starts", "sums", "units")

    def __init__(self) -> None:
        self.lines: dict[tuple, object] = {}  # key → the line waiting under it
        self.keys: list[list[tuple]] = []  # blocks of priority keys, in order
        self.units: list[list[int]] = []  # each key's backordered units
        self.sums: list[int] = []  # units per block
        self.maxes: list[tuple] = []  # the last key of each block
        self.starts: list[tuple] = [FIRST]  # first key of each segment
        self.dates: list[int | None] = [None]  # each segment's date (µs), None: uncovered

    def __len__(self) -> int:
        return len(self.lines)

    # -- the queue ----------------------------------------------------------------------

    def add(self, key: tuple, units: int, line) -> None:
        self.lines[key] = line
        if not self.keys:
            self.keys.append([key])
            self.units.append([units])
            self.sums.append(units)
            self.maxes.append(key)
            return
        j = min(bisect_left(self.maxes, key), len(self.maxes) - 1)
        keys = self.keys[j]
        i = bisect_left(keys, key)
        keys.insert(i, key)
        self.units[j].insert(i, units)
        self.sums[j] += units
        self.maxes[j] = keys[-1]
        if len(keys) > 2 * _BLOCK:
            self.keys[j:j + 1] = [keys[:_BLOCK], keys[_BLOCK:]]
            units_ = self.units[j]
            self.units[j:j + 1] = [units_[:_BLOCK], units_[_BLOCK:]]
            self.sums[j:j + 1] = [sum(self.units[j]), sum(self.units[j + 1])]
            self.maxes[j:j + 1] = [self.keys[j][-1], self.keys[j + 1][-1]]

    def remove(self, key: tuple) -> None:
        del self.lines[key]
        j = bisect_left(self.maxes, key)
        keys = self.keys[j]
        i = bisect_left(keys, key)
        del keys[i]
        self.sums[j] -= self.units[j].pop(i)
        if keys:
            self.maxes[j] = keys[-1]
        else:
            del self.keys[j], self.units[j], self.sums[j], self.maxes[j]

    # -- segments --------------------------------------------------------------------------

    def segment(self, arrivals: list[tuple[int, int]]) -> None:
        """Cut the queue by `arrivals` ((date, qty), soonest first)."""
        starts, dates = [FIRST], []
        block_ends = list(accumulate(self.sums))
        covered = 0
        for date, qty in arrivals:
            if dates and dates[-1] == date:
                covered += qty  # same date: one arrival
                continue
            if covered:
                starts.append(self._first_reaching(block_ends, covered + 1))
            dates.append(date)
            covered += qty
        if dates:
            starts.append(self._first_reaching(block_ends, covered + 1))
        dates.append(None)
        self.starts, self.dates = starts, dates

    def _first_reaching(self, block_ends: list[int], unit: int) -> tuple:
        """The key of the first line whose prefix sum of units is at least `unit`."""
        j = bisect_left(block_ends, unit)
        if j == len(block_ends):
            return END
        before = block_ends[j - 1] if j else 0
        return self.keys[j][bisect_left(list(accumulate(self.units[j])), unit - before)]

    def date_of(self, key: tuple) -> int | None:
        return self.dates[bisect_right(self.starts, key) - 1]

    @staticmethod
    def date_in(starts: list[tuple], dates: list, key: tuple) -> int | None:
        return dates[bisect_right(starts, key) - 1]

    def changed_between(self, starts: list[tuple], dates: list):
        """Keys of the lines whose date under the segments (`starts`, `dates`) differs from
        their date now: the key ranges where the two segmentations disagree."""
        points = sorted(set(starts) | set(self.starts))
        for low, high in zip(points, points[1:] + [END], strict=True):
            if self.date_in(starts, dates, low) != self.date_of(low):
                yield from self.keys_between(low, high)

    def keys_between(self, low: tuple, high: tuple):
        """Keys k with low <= k < high, in order."""
        j = bisect_left(self.maxes, low)
        while j < len(self.keys):
            keys = self.keys[j]
            i = bisect_left(keys, low) if keys[0] < low else 0
            for key in keys[i:]:
                if key >= high:
                    return
                yield key
            j += 1
