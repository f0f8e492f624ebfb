"""The pure intake: one notification per transition, pending until the customer is known,
never twice for the same change, the cool-down, and companies without a template."""

from __future__ import annotations

from notifier.domain.intake import (
    FAILED,
    PENDING,
    QUEUED,
    SUPPRESSED,
    Loaded,
    Policy,
    take_in,
)
from notifier.domain.rules import CoolDown, notification_id
from notifier_events import backorder_changed, order_created


def assigned(minutes: float = 0):
    return lambda company: Policy("notice", CoolDown(minutes)) if company != "nobody" else None


def test_a_transition_of_a_known_order_is_queued_once():
    change = backorder_changed("o1")
    result = take_in([order_created("o1"), change, change], Loaded(), assigned())
    assert [(n.notification_id, n.status, n.template) for n in result.new] == [
        (notification_id(change.id), QUEUED, "notice")]
    assert result.tally.transitions == 2 and result.tally.duplicates == 1 and result.tally.recorded == 1


def test_a_change_already_recorded_records_nothing():
    change = backorder_changed("o1")
    loaded = Loaded(existing={notification_id(change.id)})
    result = take_in([order_created("o1"), change], loaded, assigned())
    assert result.new == [] and result.tally.duplicates == 1


def test_only_none_to_partial_or_full_notifies():
    events = [order_created("o1"), backorder_changed("o1", previous="Partial", status="Full"),
              backorder_changed("o1", previous="Full", status="None"),
              backorder_changed("o1", previous="None", status="Partial", reason="manual")]
    result = take_in(events, Loaded(), assigned())
    assert [n.change["status"] for n in result.new] == ["Partial"]
    assert result.tally.changes == 3 and result.tally.transitions == 1


def test_a_change_before_its_customer_waits_then_is_queued_when_the_order_arrives():
    change = backorder_changed("o1")
    first = take_in([change], Loaded(), assigned())
    assert [n.status for n in first.new] == [PENDING]
    # The next batch brings the order; the store hands back the pending notification.
    loaded = Loaded(facts=first.facts, pending=first.new)
    second = take_in([order_created("o1")], loaded, assigned())
    assert [(n.notification_id, n.status) for n in second.decided] == [(notification_id(change.id), QUEUED)]
    assert second.new == []


def test_an_order_without_an_email_address_fails_visibly():
    result = take_in([order_created("o1", email=None), backorder_changed("o1")], Loaded(), assigned())
    assert result.new[0].status == FAILED
    assert result.new[0].last_error == "order o1 has no customer email address"


def test_the_cool_down_suppresses_a_second_email_for_a_flapping_order():
    events = [order_created("o1"),
              backorder_changed("o1", time="2025-04-30T12:00:00Z"),
              backorder_changed("o1", previous="Full", status="None", time="2025-04-30T12:10:00Z"),
              backorder_changed("o1", time="2025-04-30T12:20:00Z"),
              backorder_changed("o1", previous="Full", status="None", time="2025-04-30T13:00:00Z"),
              backorder_changed("o1", time="2025-04-30T13:30:00Z")]
    result = take_in(events, Loaded(), assigned(minutes=60))
    assert [n.status for n in result.new] == [QUEUED, SUPPRESSED, QUEUED]
    assert "cool-down" in result.new[1].last_error
    # Without a cool-down every transition sends.
    assert [n.status for n in take_in(events, Loaded(), assigned()).new] == [QUEUED] * 3


def test_the_cool_down_also_counts_emails_of_earlier_batches():
    loaded = Loaded(last_emailed={"o1": 1746014400 * 1_000_000})  # 2025-04-30T12:00:00Z
    result = take_in([order_created("o1"), backorder_changed("o1", time="2025-04-30T12:30:00Z")],
                     loaded, assigned(minutes=60))
    assert result.new[0].status == SUPPRESSED


def test_companies_without_a_template_record_nothing_and_are_counted():
    result = take_in([order_created("o1", company="nobody"), backorder_changed("o1", company="nobody")],
                     Loaded(), assigned())
    assert result.new == [] and result.tally.unassigned == 1


def test_the_last_change_is_kept_with_the_order_for_previews():
    change = backorder_changed("o1", status="Partial")
    result = take_in([change], Loaded(), assigned())
    assert result.facts["o1"].last_change["id"] == change.id
    assert result.facts["o1"].known is False


def test_an_older_change_redelivered_late_does_not_replace_the_last_one():
    newer = backorder_changed("o1", status="Partial", time="2025-04-30T13:00:00Z")
    older = backorder_changed("o1", status="Full", time="2025-04-30T12:00:00Z")
    result = take_in([newer, older], Loaded(), assigned())
    assert result.facts["o1"].last_change["id"] == newer.id
