"""Slip notices (setting, default off): an order that stays a backorder and whose expected
date moves later than the one its last email gave gets one email for it; never for a date
that moved earlier, became unknown or is no later than what was emailed; once per change
(by its id); within the cool-down of the order's last email, held back until a later change."""

from __future__ import annotations

from backorder_events import BackorderChanged
from notifier.domain.intake import PENDING, QUEUED, SUPPRESSED, Loaded, Policy, take_in
from notifier.domain.rules import SCENARIO, SLIP_SCENARIO, CoolDown, is_slip, notification_id
from notifier_events import order_created

D1, D2, D3 = "2025-05-03T00:00:00Z", "2025-05-09T00:00:00Z", "2025-05-20T00:00:00Z"


def change(id: str, *, expected: str | None, previous_expected: str | None = None, status: str = "Full",
           previous: str = "Full", time: str = "2025-04-30T12:00:00Z", backorder: int = 2) -> BackorderChanged:
    return BackorderChanged.model_validate({
        "specversion": "1.0", "id": id, "source": "/backorders/recalculator", "type": "BackorderChanged",
        "time": time, "subject": "o1",
        "data": {"order_id": "o1", "company_id": "default", "status": status, "previous_status": previous,
                 "reason": "recalculation", "cause_id": "cause",
                 "lines": [{"line_id": "1", "sku": "cat-hammock", "qty": 2, "backorder_qty": backorder,
                            "previous_backorder_qty": 2, "expected_date": expected,
                            "previous_expected_date": previous_expected}]},
    })


def marked(expected: str | None = D1, time: str = "2025-04-30T10:00:00Z") -> BackorderChanged:
    return change("marked", expected=expected, previous="None", time=time)


def policy(slips: bool = True, minutes: float = 0):
    return lambda company: Policy("notice", CoolDown(minutes), "slip" if slips else None)


def emailed(events, minutes: float = 0, loaded: Loaded | None = None):
    """(scenario, change id, status) of each notification recorded, in order."""
    result = take_in([order_created("o1"), *events], loaded or Loaded(), policy(minutes=minutes))
    return [(n.scenario, n.event_id, n.status) for n in result.new], result


def test_a_date_later_than_the_one_emailed_sends_one_slip_notice_with_its_template():
    found, result = emailed([marked(D1), change("later", expected=D2, previous_expected=D1,
                                                time="2025-04-30T11:00:00Z")])
    assert found == [(SCENARIO, "marked", QUEUED), (SLIP_SCENARIO, "later", QUEUED)]
    assert [n.template for n in result.new] == ["notice", "slip"]
    assert result.new[1].notification_id == notification_id("later", SLIP_SCENARIO) != notification_id("later")
    assert result.facts["o1"].emailed_day == "2025-05-09"
    assert result.tally.slips == 1


def test_slip_notices_are_off_unless_the_setting_is_on():
    events = [order_created("o1"), marked(D1), change("later", expected=D2, previous_expected=D1)]
    result = take_in(events, Loaded(), policy(slips=False))
    assert [n.scenario for n in result.new] == [SCENARIO]


def test_the_same_change_again_sends_nothing_more():
    later = change("later", expected=D2, previous_expected=D1, time="2025-04-30T11:00:00Z")
    found, first = emailed([marked(D1), later, later])
    assert [f[1] for f in found] == ["marked", "later"] and first.tally.duplicates == 1
    # Redelivered in a later batch: the store finds its id recorded.
    again = take_in([later], Loaded(facts=first.facts, existing={n.notification_id for n in first.new}), policy())
    assert again.new == [] and again.tally.duplicates == 1


def test_no_slip_for_an_earlier_date_an_unknown_one_or_the_same_day_again():
    found, result = emailed([
        marked(D2),
        change("earlier", expected=D1, previous_expected=D2, time="2025-04-30T11:00:00Z"),
        change("unknown", expected=None, previous_expected=D1, time="2025-04-30T11:10:00Z"),
        change("same", expected=D2, previous_expected=D2, time="2025-04-30T11:20:00Z"),
        change("hours-later", expected="2025-05-09T18:00:00Z", previous_expected=D2, time="2025-04-30T11:30:00Z"),
    ])
    assert found == [(SCENARIO, "marked", QUEUED)]
    assert result.facts["o1"].emailed_day == "2025-05-09"


def test_a_date_moving_later_but_not_past_the_one_emailed_is_no_slip():
    found, _ = emailed([marked(D3), change("back", expected=D1, previous_expected=D3, time="2025-04-30T11:00:00Z"),
                        change("up", expected=D2, previous_expected=D1, time="2025-04-30T11:10:00Z")])
    assert found[-1][0] == SLIP_SCENARIO and found[-1][2] == SUPPRESSED
    assert [f for f in found if f[2] == QUEUED] == [(SCENARIO, "marked", QUEUED)]


def test_a_known_date_after_an_email_that_said_unknown_is_no_slip():
    found, _ = emailed([marked(None), change("known", expected=D2, previous_expected=None)])
    assert found == [(SCENARIO, "marked", QUEUED)]


def test_within_the_cool_down_a_slip_is_held_back_and_told_with_the_next_change_after_it():
    found, result = emailed([
        marked(D1),
        change("slip", expected=D2, previous_expected=D1, time="2025-04-30T11:00:00Z"),
        # A day and a half later the date has not moved again; the order still waits for D2.
        change("next", expected=D2, previous_expected=D2, status="Partial", time="2025-05-01T22:00:00Z",
               backorder=1),
    ], minutes=24 * 60)
    assert found == [(SCENARIO, "marked", QUEUED), (SLIP_SCENARIO, "slip", SUPPRESSED),
                     (SLIP_SCENARIO, "next", QUEUED)]


def test_the_cool_down_counts_slip_notices_too():
    found, _ = emailed([
        marked(D1, time="2025-04-28T10:00:00Z"),
        change("slip", expected=D2, previous_expected=D1, time="2025-04-30T10:00:00Z"),
        change("again", expected=D3, previous_expected=D2, time="2025-04-30T12:00:00Z"),
    ], minutes=24 * 60)
    assert [f[2] for f in found] == [QUEUED, QUEUED, SUPPRESSED]


def test_a_slip_before_the_customer_is_known_waits_and_is_decided_after_the_notice():
    events = [marked(D1), change("later", expected=D2, previous_expected=D1, time="2025-04-30T11:00:00Z")]
    first = take_in(events, Loaded(), policy())
    assert [n.status for n in first.new] == [PENDING, PENDING]
    second = take_in([order_created("o1")], Loaded(facts=first.facts, pending=first.new), policy())
    assert [(n.scenario, n.status) for n in second.decided] == [(SCENARIO, QUEUED), (SLIP_SCENARIO, QUEUED)]
    assert second.facts["o1"].emailed_day == "2025-05-09"


def test_an_older_change_redelivered_late_is_no_slip():
    found, result = emailed([marked(D1), change("new", expected=D1, time="2025-04-30T12:00:00Z"),
                             change("old", expected=D2, previous_expected=D1, time="2025-04-30T11:00:00Z")])
    assert found == [(SCENARIO, "marked", QUEUED)]


def test_is_slip_compares_known_days_only():
    assert is_slip("2025-05-09", "2025-05-03")
    assert not is_slip("2025-05-03", "2025-05-03")
    assert not is_slip(None, "2025-05-03") and not is_slip("2025-05-09", None)
