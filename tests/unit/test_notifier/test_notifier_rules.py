"""Which changes send the EmailCustomerForBackOrder email, identities, and the cool-down."""

from __future__ import annotations

import pytest
from notifier.domain.rules import (
    CoolDown,
    is_marked_backorder,
    message_id,
    notification_id,
)


@pytest.mark.parametrize(("previous", "status", "notifies"), [
    ("None", "Full", True),
    ("None", "Partial", True),
    ("None", "None", False),
    ("Partial", "Full", False),  # already a backorder: no second email
    ("Full", "Partial", False),
    ("Full", "None", False),
    ("Partial", "None", False),
])
def test_an_email_when_an_order_is_marked_as_a_backorder(previous, status, notifies):
    assert is_marked_backorder(previous, status) is notifies


def test_the_notification_id_and_message_id_derive_from_the_change():
    first = notification_id("f3f5c1e2-0000-5000-8000-000000000001")
    assert first == notification_id("f3f5c1e2-0000-5000-8000-000000000001")
    assert first != notification_id("f3f5c1e2-0000-5000-8000-000000000002")
    assert message_id(first, "mail.example") == f"<{first}@mail.example>"


def test_the_cool_down_counts_business_time_from_the_last_email():
    minute = 60_000_000
    cool = CoolDown(minutes=30)
    assert not cool.suppresses(100 * minute, None)
    assert cool.suppresses(100 * minute, 71 * minute)
    assert not cool.suppresses(100 * minute, 70 * minute)  # exactly 30 minutes later
    assert not CoolDown().suppresses(100 * minute, 99 * minute)  # off by default
