"""Rules §2: the inputs the recalculator keeps — Sellercloud status names and codes, default
company, unknown warehouses, and the settings table with its defaults."""

from __future__ import annotations

import pytest
from recalculator.domain.engine import Engine
from support import backorder_of_new_line as _backorder
from support import created, event, feed, order_lines, stock


@pytest.mark.parametrize("code, backorder", [
    (10, 2),  # NoPayment = Unpaid: calculated (include_unpaid_and_partially_paid default on)
    (20, 0),  # Authorized: include_authorized is off by default
    (30, 2),  # Charged
    (40, 2),  # Uncleared
    (50, 0),  # PartiallyRefund = PartiallyRefunded: never
    (60, 0),  # FullRefund = Refunded: never
    (70, 2),  # PartialPayment = PartiallyPaid
    (80, 2),  # eBayPaid = Charged
    (99, 0),  # PaymentError: never
])
def test_sellercloud_payment_status_codes_are_accepted_and_mapped(code, backorder):
    """§2: "payment status codes 10 NoPayment (= Unpaid), 20 Authorized, 30 Charged,
    40 Uncleared, 50 PartiallyRefund, 60 FullRefund, 70 PartialPayment, 80 eBayPaid
    (= Charged), 99 PaymentError"."""
    assert _backorder(payment_status=code) == backorder


@pytest.mark.parametrize("code, backorder", [
    (1, 0), (2, 2), (3, 0), (100, 0), (200, 0), (300, 0), (999, 0), (-1, 0),
])
def test_sellercloud_order_status_codes_are_accepted_and_mapped(code, backorder):
    """§2: "order status codes 1 ShoppingCart, 2 InProcess, 3 Completed, 100 ProblemOrder,
    200 OnHold, 300 Quote, 999 Void, -1 Canceled" — only InProcess is calculated by default."""
    assert _backorder(order_status=code) == backorder


@pytest.mark.parametrize("name, backorder", [
    ("NoPayment", 2), ("PartialPayment", 2), ("eBayPaid", 2),
    ("FullRefund", 0), ("PartiallyRefund", 0),
])
def test_sellercloud_payment_status_names_are_accepted(name, backorder):
    """§2: "Names and codes both." """
    assert _backorder(payment_status=name) == backorder


def test_sellercloud_order_status_name_canceled_means_cancelled():
    """§2: "-1 Canceled (= Cancelled)" — a cancelled order is not calculated."""
    assert _backorder(order_status="Canceled") == 0


def test_payment_code_10_nopayment_counts_as_unpaid_and_follows_its_setting():
    """§2 10 NoPayment = Unpaid; §4 Unpaid is calculated with include_unpaid_and_partially_paid
    (default on) and not without it."""
    assert _backorder(payment_status=10) == 2
    assert _backorder(payment_status=10, include_unpaid_and_partially_paid=False) == 0


def test_payment_code_60_fullrefund_is_never_calculated_whatever_the_settings():
    """§4: "refunded and errored payments are never calculated"."""
    assert _backorder(payment_status=60, include_authorized=True, include_on_hold=True,
                      include_unpaid_and_partially_paid=True) == 0


def test_order_status_code_200_onhold_is_calculated_with_include_on_hold():
    """§2 200 OnHold; §4 OnHold is calculated with include_on_hold."""
    assert _backorder(order_status=200, include_on_hold=True) == 2


def test_status_codes_work_in_order_status_changed():
    """§2 codes are accepted on every event that carries a status: code 2 (InProcess) brings a
    Quote (300) back into the calculation at the next recalculation."""
    engine = Engine()
    feed(engine, created("o1", [("1", "X", 2)], order_status=300))
    assert order_lines(engine, "o1") == {"1": 0}
    feed(engine,
         event("OrderStatusChanged", {"order_id": "o1", "order_status": 2}),
         event("RecalculateBackorders", {}))
    assert order_lines(engine, "o1") == {"1": 2}


def test_a_warehouse_never_described_is_sellable():
    """§2: "A warehouse never described is Sellable." Its 2 units count as supply."""
    engine = Engine()
    feed(engine, stock("X", 2, "NEVER-DESCRIBED"), created("o1", [("1", "X", 3)]))
    assert order_lines(engine, "o1") == {"1": 1}


def test_company_defaults_to_default():
    """§2: `company_id` (default "default")."""
    engine = Engine()
    [made] = feed(engine, created("o1", [("1", "X", 1)]))
    assert made.orders[0].company_id == "default"


@pytest.mark.parametrize("patch", [
    {"use_shipping_containers_for_po": True},
    {"send_magento_backorder_tags": False},
])
def test_channel_feed_settings_do_not_touch_allocation(patch):
    """§2: use_shipping_containers_for_po and send_magento_backorder_tags are channel-feed
    settings; changing them neither publishes nor changes a later recalculation (2 of 3 on hand:
    backorder 1)."""
    engine = Engine()
    feed(engine, stock("X", 2), created("o1", [("1", "X", 3)]))
    [changed] = feed(engine, event("SettingsChanged", {"settings": patch}))
    assert (changed.orders, changed.products) == ([], [])
    feed(engine, event("RecalculateBackorders", {}))
    assert order_lines(engine, "o1") == {"1": 1}
