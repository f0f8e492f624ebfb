"""Expected dates as the notifier shows them: a backordered line's (from its
`BackorderChanged` line, computed by the recalculator) and the order's, the latest of its
backordered lines. Shown as a day, YYYY-MM-DD in UTC, like the order date; "unknown" when
no date is known (no supply covers the line, or the change came from a recalculator that
gives none)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

UNKNOWN = "unknown"


def parse(value: str | None) -> datetime | None:
    """A line's `expected_date` as the change's JSON holds it."""
    return datetime.fromisoformat(value) if value else None


def day(moment: datetime | None) -> str | None:
    """The day shown to the customer (YYYY-MM-DD, UTC)."""
    return moment.astimezone(UTC).date().isoformat() if moment is not None else None


def order_day(lines: Iterable[Mapping[str, Any]], *, previous: bool = False) -> str | None:
    """The order's expected day: the latest of its backordered lines'; None when one of
    them has no date (the order cannot be complete before that line is) or none is
    backordered. `previous`: the day the order's previous change gave."""
    qty, date = ("previous_backorder_qty", "previous_expected_date") if previous else ("backorder_qty", "expected_date")
    days = []
    for line in lines:
        if line.get(qty, 0) > 0:
            shown = day(parse(line.get(date)))
            if shown is None:
                return None
            days.append(shown)
    return max(days, default=None)
