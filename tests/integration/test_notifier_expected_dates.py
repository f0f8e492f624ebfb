"""Expected dates in the emails, through a real SMTP server (aiosmtpd on 127.0.0.1) with the
state in SQLite and PostgreSQL: each backordered line's date and the order's in the
received message; a slip notice sent once when the date moves later than the one emailed,
across a restart of the notifier, a redelivery and a replay of every record."""

from __future__ import annotations

import json

from integration.test_notifier_smtp import Recorder, notifier, order_created, smtp_server
from notifier.config import from_mapping
from notifier.domain.intake import QUEUED, SENT, SUPPRESSED
from notifier.domain.rules import SCENARIO, SLIP_SCENARIO

D1, D2 = "2025-05-03T00:00:00Z", "2025-05-09T16:00:00Z"


def dated_change(order_id: str, id: str, *, time: str, previous: str = "Full", status: str = "Partial",
                 dates: tuple[str | None, str | None] = (D1, None),
                 previous_dates: tuple[str | None, str | None] = (None, None)) -> str:
    """Two lines: cat-hammock, 2 of 2 backordered; SC-Tees, 1 of 3 (or none when the second
    date is None and the status Partial)."""
    lines = [("1", "cat-hammock", 2, 2, dates[0], previous_dates[0]),
             ("2", "SC-Tees", 3, 1 if dates[1] else 0, dates[1], previous_dates[1])]
    return json.dumps({
        "specversion": "1.0", "id": id, "source": "/backorders/recalculator", "type": "BackorderChanged",
        "time": time, "subject": order_id, "datacontenttype": "application/json",
        "data": {"order_id": order_id, "company_id": "c1", "status": status, "previous_status": previous,
                 "reason": "recalculation", "cause_id": f"cause-{id}",
                 "lines": [{"line_id": lid, "sku": sku, "qty": qty, "backorder_qty": bo,
                            "previous_backorder_qty": 2 if lid == "1" else 0,
                            "expected_date": date, "previous_expected_date": before}
                           for lid, sku, qty, bo, date, before in lines]},
    })


def config_for(port: int, tmp_path, **notifier_settings):
    body = "Dear #?FirstName?#,\n#?OrderItemsDetails2?#\nExpected: #?ExpectedDate?#\n"
    return from_mapping({
        "notifier": {"message_id_domain": "mail.thirstytea.example", **notifier_settings},
        "profiles": {"main": {"type": "smtp", "host": "127.0.0.1", "port": port, "security": "none",
                              "timeout_seconds": 5, "max_attempts": 2, "backoff_seconds": 0.05}},
        "templates": {
            "notice": {"subject": "Order #?OrderID?# is on backorder (expected #?ExpectedDate?#)",
                       "sender_email": "orders@thirstytea.example", "profile": "main", "text": body,
                       "html": "<p>Expected: #?ExpectedDate?#</p>\n#?OrderItemsDetails?#"},
            "slip": {"subject": "Order #?OrderID?# now expected #?ExpectedDate?#",
                     "sender_email": "orders@thirstytea.example", "profile": "main", "text": body},
        },
        "companies": {"c1": {"assignments": {SCENARIO: "notice", SLIP_SCENARIO: "slip"}}},
    }, "test", base=tmp_path)


def text_of(received) -> str:
    return received.message.get_body(("plain",)).get_content().replace("\r\n", "\n")


async def test_the_received_email_shows_each_backordered_lines_date_and_the_orders(database, tmp_path):
    handler = Recorder()
    with smtp_server(handler) as server:
        async with notifier(database, config_for(server.port, tmp_path)) as service:
            orders = [order_created("5145827", lines=(("1", "cat-hammock", 2, "Cat Hammock"),
                                                      ("2", "SC-Tees", 3, "SC Tees")))]
            changes = [dated_change("5145827", "bc-1", time="2025-04-30T10:00:00Z", previous="None",
                                    dates=(D1, D2))]
            await service.take_in({"orders:0": list(enumerate(orders, 1)), "changes:0": list(enumerate(changes, 1))})
            tally = await service.deliver_all(wait_for_retries=5)
    assert tally.sent == {"smtp": 1}
    [got] = handler.received
    assert got.message["Subject"] == "Order 5145827 is on backorder (expected 2025-05-09)"
    assert text_of(got) == ("Dear Colin,\n"
                            "- Cat Hammock (cat-hammock): 2 ordered, 2 backordered, expected 2025-05-03\n"
                            "- SC Tees (SC-Tees): 3 ordered, 1 backordered, expected 2025-05-09\n"
                            "Expected: 2025-05-09\n")
    html = got.message.get_body(("html",)).get_content()
    assert "<p>Expected: 2025-05-09</p>" in html
    assert '<td style="text-align:right">2</td><td>2025-05-03</td></tr>' in html
    assert '<td style="text-align:right">1</td><td>2025-05-09</td></tr>' in html


async def test_a_slip_is_emailed_once_across_a_restart_a_redelivery_and_a_replay(database, tmp_path):
    handler = Recorder()
    order = order_created("5145827", lines=(("1", "cat-hammock", 2, "Cat Hammock"), ("2", "SC-Tees", 3, None)))
    marked = dated_change("5145827", "bc-1", time="2025-04-30T10:00:00Z", previous="None", dates=(D1, None))
    slipped = dated_change("5145827", "bc-2", time="2025-04-30T11:00:00Z", dates=(D2, None),
                           previous_dates=(D1, None))
    unchanged = dated_change("5145827", "bc-3", time="2025-04-30T12:00:00Z", status="Full", dates=(D2, D1),
                             previous_dates=(D2, None))
    earlier = dated_change("5145827", "bc-4", time="2025-04-30T13:00:00Z", dates=(D1, None),
                           previous_dates=(D2, D1))
    with smtp_server(handler) as server:
        config = config_for(server.port, tmp_path, cooldown_minutes=0, slip_emails=True)
        async with notifier(database, config) as service:
            await service.take_in({"orders:0": [(1, order)], "changes:0": [(1, marked)]})
            await service.deliver_all(wait_for_retries=5)
        assert [r.message["Subject"] for r in handler.received] == ["Order 5145827 is on backorder (expected 2025-05-03)"]
        # A new process over the same state (a restart): the day emailed is in the store.
        async with notifier(database, config) as service:
            await service.take_in({"changes:0": [(2, slipped)]})
            await service.take_in({"changes:0": [(2, slipped), (3, slipped), (4, unchanged), (5, earlier)]})
            await service.deliver_all(wait_for_retries=5)
            # Every record again, from other sources (the topics replayed from the beginning).
            records = [order, marked, slipped, unchanged, earlier]
            await service.take_in({"replay:0": list(enumerate(records, 1))})
            await service.deliver_all(wait_for_retries=5)
            rows = await service.store.notifications()
    subjects = [r.message["Subject"] for r in handler.received]
    assert subjects == ["Order 5145827 is on backorder (expected 2025-05-03)", "Order 5145827 now expected 2025-05-09"]
    assert "- Cat Hammock (cat-hammock): 2 ordered, 2 backordered, expected 2025-05-09" in text_of(handler.received[1])
    assert [(r.scenario, r.event_id, r.status) for r in rows] == [
        (SCENARIO, "bc-1", SENT), (SLIP_SCENARIO, "bc-2", SENT)]


async def test_within_the_cool_down_the_slip_waits_for_the_orders_next_change_after_it(database, tmp_path):
    handler = Recorder()
    order = order_created("5145827", lines=(("1", "cat-hammock", 2, "Cat Hammock"), ("2", "SC-Tees", 3, None)))
    marked = dated_change("5145827", "bc-1", time="2025-04-30T10:00:00Z", previous="None")
    slipped = dated_change("5145827", "bc-2", time="2025-04-30T11:00:00Z", dates=(D2, None),
                           previous_dates=(D1, None))
    next_day = dated_change("5145827", "bc-3", time="2025-05-01T12:00:00Z", status="Full", dates=(D2, D2),
                            previous_dates=(D2, None))
    with smtp_server(handler) as server:
        async with notifier(database, config_for(server.port, tmp_path, slip_emails=True)) as service:
            await service.take_in({"orders:0": [(1, order)], "changes:0": [(1, marked), (2, slipped)]})
            await service.deliver_all(wait_for_retries=5)
            assert len(handler.received) == 1
            await service.take_in({"changes:0": [(3, next_day)]})
            await service.deliver_all(wait_for_retries=5)
            rows = await service.store.notifications()
    assert [(r.event_id, r.status) for r in rows] == [("bc-1", SENT), ("bc-2", SUPPRESSED), ("bc-3", SENT)]
    assert handler.received[1].message["Subject"] == "Order 5145827 now expected 2025-05-09"
    assert QUEUED not in {r.status for r in rows}
