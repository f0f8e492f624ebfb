"""The order's expected date: the latest of its backordered lines', unknown when one of them
has none; shown as a UTC day."""

from __future__ import annotations

from datetime import UTC, datetime

from notifier.domain.expected import day, order_day, parse


def line(backorder_qty: int, expected: str | None) -> dict:
    return {"line_id": "1", "sku": "s", "qty": 3, "backorder_qty": backorder_qty, "expected_date": expected}


def test_the_latest_date_of_the_backordered_lines_is_the_orders():
    lines = [line(1, "2025-05-03T00:00:00Z"), line(2, "2025-05-09T15:00:00Z"), line(1, "2025-05-01T00:00:00Z")]
    assert order_day(lines) == "2025-05-09"


def test_a_line_not_backordered_does_not_count_even_with_a_date():
    assert order_day([line(1, "2025-05-03T00:00:00Z"), line(0, "2025-06-01T00:00:00Z")]) == "2025-05-03"
    assert order_day([line(0, None)]) is None


def test_one_backordered_line_without_a_date_makes_the_order_date_unknown():
    assert order_day([line(1, "2025-05-03T00:00:00Z"), line(1, None)]) is None
    assert order_day([{"line_id": "1", "sku": "s", "qty": 1, "backorder_qty": 1}]) is None  # an older event


def test_the_day_is_taken_in_utc():
    assert day(parse("2025-05-03T23:30:00-02:00")) == "2025-05-04"
    assert day(datetime(2025, 5, 3, tzinfo=UTC)) == "2025-05-03"
    assert day(None) is None
