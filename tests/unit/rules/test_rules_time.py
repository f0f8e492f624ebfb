"""Rules §1 (time) and the max_days_to_be_back setting: "now" is the event's time."""

from __future__ import annotations

from backorder_events import BackorderSettings
from recalculator.domain.engine import Engine
from support import created, event, feed, order_lines, stock

DAY0 = "2025-04-01T10:00:00Z"


def _recalculated_at(recalc_time: str, max_days: int | None = 1) -> int:
    """An order dated DAY0 backordered 4 at DAY0; 4 arrive; a recalculation at recalc_time."""
    engine = Engine(BackorderSettings(max_days_to_be_back=max_days))
    feed(engine,
         created("o1", [("1", "X", 4)], date=DAY0, time=DAY0),
         stock("X", 4, time=DAY0),
         event("RecalculateBackorders", {}, time=recalc_time))
    return order_lines(engine, "o1")["1"]


def test_line_exactly_max_days_old_is_not_frozen_and_is_recalculated():
    """§4: frozen when order_date is *more than* max_days before the event's time. Exactly 1
    day old at max_days 1 → recalculated: backorder 4 → 0."""
    assert _recalculated_at("2025-04-02T10:00:00Z") == 0


def test_line_a_microsecond_older_than_max_days_is_frozen_and_keeps_its_backorder():
    """§4: "A frozen line keeps its published backorder quantity." 1 day + 1µs old → stays 4."""
    assert _recalculated_at("2025-04-02T10:00:00.000001Z") == 4


def test_max_days_off_by_default_never_freezes_even_very_old_orders():
    """§2: max_days_to_be_back defaults to null (off): a year-old order is still recalculated."""
    assert _recalculated_at("2026-04-01T10:00:00Z", max_days=None) == 0


def test_max_days_is_measured_from_the_event_time_not_the_wall_clock():
    """§1: "Every rule that depends on "now" uses the time of the event being processed, never
    the wall clock." A 2020 order is years old by the wall clock but 4 days old at the event."""
    engine = Engine(BackorderSettings(max_days_to_be_back=10))
    feed(engine,
         created("o1", [("1", "X", 3)], date="2020-01-01T00:00:00Z", time="2020-01-01T00:00:00Z"),
         stock("X", 3, recalculate=True, time="2020-01-05T00:00:00Z"))
    assert order_lines(engine, "o1") == {"1": 0}


def test_replaying_the_same_log_gives_the_same_result():
    """§1: "Replaying the same log therefore gives the same result." The log's outcome hinges
    on event times (max_days 2): o1 is frozen at the last event, o2 is not."""
    log = [
        created("o1", [("1", "X", 2)], date="2021-03-01T00:00:00Z", time="2021-03-01T00:00:00Z"),
        created("o2", [("1", "X", 2)], date="2021-03-05T00:00:00Z", time="2021-03-05T00:00:00Z"),
        stock("X", 4, recalculate=True, time="2021-03-06T00:00:00Z"),
    ]
    first, second = (Engine(BackorderSettings(max_days_to_be_back=2)) for _ in range(2))
    assert feed(first, *log) == feed(second, *log)
    for engine in (first, second):
        # o1 frozen: keeps backorder 2 (holds 0); o2 gets 2 of the 4.
        assert (order_lines(engine, "o1"), order_lines(engine, "o2")) == ({"1": 2}, {"1": 0})
