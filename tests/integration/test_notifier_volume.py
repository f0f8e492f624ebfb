"""Email volume over a generated day (bench/notifier_volume.py, smaller): the example
configuration against a real SMTP server sends no order more than one email within a day,
where without a cool-down the same day sends some orders several."""

from __future__ import annotations

import pytest
from bench.notifier_volume import measure


@pytest.fixture(autouse=True)
def _no_configuration_from_the_environment(monkeypatch):
    monkeypatch.delenv("BACKORDERS_NOTIFIER_CONFIG", raising=False)


def test_the_example_configuration_sends_at_most_one_email_per_order_a_day():
    without = measure(seed=42, orders=1200, skus=60, cooldown_minutes=0)
    assert without.most > 1, "the day should mark some order as a backorder more than once"

    volume = measure(seed=42, orders=1200, skus=60)
    print(f"\nemails per order over a generated day of 1,200 orders: without a cool-down {without.distribution} "
          f"(most {without.most}), with the default {volume.distribution}")
    assert volume.most_in_a_day == volume.most == 1
    assert volume.orders == without.orders  # every order marked still gets its email
    assert volume.emails == volume.orders < without.emails
