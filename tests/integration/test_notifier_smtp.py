"""The notifier against a real SMTP server (aiosmtpd on 127.0.0.1, started here) with its
state in SQLite and in PostgreSQL: recipients, headers, both MIME parts, placeholders
filled and escaped; STARTTLS and implicit TLS with a certificate made here; AUTH; 451 then
250; 550; the same BackorderChanged twice and a full replay; a template without profile."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import io
import json
import socket
import ssl
import sys
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from backorders_platform import logs
from backorders_platform.database import make_engine
from notifier.adapters.store import Store
from notifier.config import from_mapping
from notifier.domain.intake import FAILED, PENDING, QUEUED, SENT
from notifier.service import NotifierService

# -- events ---------------------------------------------------------------------------------


def order_created(order_id: str, *, company: str = "c1", email_address: str = "colin@example.com",
                  first: str = "Colin", last: str = "Customerson", time: str = "2025-04-30T10:00:00Z",
                  lines=(("1", "cat-hammock", 2, "Cat Hammock"),), id: str | None = None) -> str:
    return json.dumps({
        "specversion": "1.0", "id": id or f"oc-{order_id}", "source": "/oms", "type": "OrderCreated",
        "time": time, "subject": order_id,
        "data": {"order_id": order_id, "order_date": time, "company_id": company, "payment_status": "Charged",
                 "customer": {"email": email_address, "first_name": first, "last_name": last,
                              "shipping_address": {"name": f"{first} {last}", "street1": "12 Harbor Way",
                                                   "city": "Lakewood", "state": "NJ", "postal_code": "08701",
                                                   "country": "US"}},
                 "lines": [{"line_id": lid, "sku": sku, "qty": qty, "name": name} for lid, sku, qty, name in lines]},
    })


def backorder_changed(order_id: str, *, id: str | None = None, company: str = "c1", status: str = "Full",
                      previous: str = "None", time: str = "2025-04-30T10:00:00Z",
                      lines=(("1", "cat-hammock", 2, 2),)) -> str:
    return json.dumps({
        "specversion": "1.0", "id": id or f"bc-{order_id}", "source": "/backorders/recalculator",
        "type": "BackorderChanged", "time": time, "subject": order_id, "datacontenttype": "application/json",
        "data": {"order_id": order_id, "company_id": company, "status": status, "previous_status": previous,
                 "reason": "recalculation", "cause_id": f"cause-{order_id}",
                 "lines": [{"line_id": lid, "sku": sku, "qty": qty, "backorder_qty": bo, "previous_backorder_qty": 0}
                           for lid, sku, qty, bo in lines]},
    })


# -- the SMTP server ------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: str | None

    @property
    def message(self):
        return email.message_from_bytes(self.data, policy=email.policy.default)


@dataclass
class Recorder:
    """aiosmtpd handler: keeps what it accepted; `replies` scripts the answers to DATA
    (None: accept), `refuse` the answer to RCPT for some addresses."""

    replies: list[str | None] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    refuse_once: dict[str, str] = field(default_factory=dict)  # the first RCPT of the address only
    received: list[Received] = field(default_factory=list)
    data_commands: int = 0
    rcpt_commands: list[str] = field(default_factory=list)
    delay: float = 0.0  # seconds before answering DATA, as a busy server would
    # Per DATA, seconds between keeping the message and answering 250 (a server that has
    # the message but is slow to say so); then answered at once.
    slow_acceptance: list[float] = field(default_factory=list)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpt_commands.append(address)
        if address in self.refuse:
            return self.refuse[address]
        if address in self.refuse_once:
            return self.refuse_once.pop(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.data_commands += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.replies:
            reply = self.replies.pop(0)
            if reply is not None:
                return reply
        login = session.auth_data if session.authenticated else None
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, login))
        if self.slow_acceptance:
            await asyncio.sleep(self.slow_acceptance.pop(0))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def smtp_server(handler: Recorder, **kwargs):
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


class Authenticator:
    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user, password

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.user
              and auth_data.password.decode() == self.password)
        # handled=False: aiosmtpd itself answers (235, or 535 for bad credentials).
        return AuthResult(success=ok, handled=False, auth_data=self.user if ok else None)


@dataclass
class Tls:
    server_context: ssl.SSLContext
    ca_file: Path


@pytest.fixture
def tls(tmp_path) -> Tls:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return Tls(context, ca_file)


# -- the notifier -----------------------------------------------------------------------------


def config_for(port: int | None, tmp_path: Path, *, profile: dict | None = None, template: dict | None = None,
               cooldown: float = 0):
    profiles = {}
    if port is not None:
        profiles["main"] = {"type": "smtp", "host": "127.0.0.1", "port": port, "security": "none",
                            "timeout_seconds": 5, "max_attempts": 3, "backoff_seconds": 0.05, **(profile or {})}
    return from_mapping({
        "notifier": {"message_id_domain": "mail.thirstytea.example"},
        "profiles": profiles,
        "templates": {"notice": {
            "subject": "Order #?OrderID?# is on backorder",
            "sender_name": "Thirsty Tea", "sender_email": "orders@thirstytea.example",
            "reply_to": "support@thirstytea.example", "cc": ["cc@thirstytea.example"],
            "bcc": ["archive@thirstytea.example"], "profile": "main",
            "text": "Dear #?FirstName?# #?LastName?#,\nOrder #?OrderID?#:\n#?OrderItemsDetails2?#\n"
                    "#?ShippingAddress?#\n#?CompanyName?#\n#?FooterInfoCompany?#",
            "html": "<p>Dear #?FirstName?# #?LastName?#,</p>\n<p>Order #?OrderID?#</p>\n#?OrderItemsDetails?#\n"
                    "<p>#?ShippingAddressHtml?#</p><p>#?CompanyName?#</p>\n<footer>#?FooterInfoCompany?#</footer>",
            **(template or {})}},
        "companies": {"c1": {"name": "Thirsty <Tea>", "footer": "Thirsty <Tea> & Co\n1 Main St, Lakewood",
                             "cooldown_minutes": cooldown,
                             "assignments": {"EmailCustomerForBackOrder": "notice"}}},
    }, "test", base=tmp_path)


@asynccontextmanager
async def notifier(database, config):
    db = make_engine(database.url, database.schema)
    store = Store(db, database.schema)
    await store.create_schema()
    try:
        yield NotifierService(store, config)
    finally:
        await db.dispose()


async def statuses(service: NotifierService) -> dict[str, str]:
    return {row.order_id: row.status for row in await service.store.notifications()}


async def append(service, sources: dict[str, list[str]]) -> None:
    """Take in records as the next positions of their sources (like new offsets of a topic)."""
    batch = {}
    for source, records in sources.items():
        start = (await service.store.position(source) or 0) + 1
        batch[source] = list(enumerate(records, start))
    await service.take_in(batch)


async def take_in_and_deliver(service, orders: list[str], changes: list[str], *, wait: float = 5.0):
    await append(service, {"orders:0": orders, "changes:0": changes})
    return await service.deliver_all(wait_for_retries=wait)


# -- tests ---------------------------------------------------------------------------------------


async def test_recipients_headers_both_parts_placeholders_filled_and_escaped(database, tmp_path):
    handler = Recorder()
    with smtp_server(handler) as server:
        async with notifier(database, config_for(server.port, tmp_path)) as service:
            orders = [order_created("5145827", first="Colin <b>", last="O'Hara & Sons",
                                    lines=(("1", "cat-hammock", 2, "Cat <Hammock>"), ("2", "SC-Tees", 3, None)))]
            changes = [backorder_changed("5145827", status="Partial",
                                         lines=(("1", "cat-hammock", 2, 2), ("2", "SC-Tees", 3, 0)))]
            tally = await take_in_and_deliver(service, orders, changes)
            rows = await service.store.notifications()
    assert tally.sent == {"smtp": 1}
    [got] = handler.received
    assert got.mail_from == "orders@thirstytea.example"
    assert got.rcpt_tos == ["colin@example.com", "cc@thirstytea.example", "archive@thirstytea.example"]
    message = got.message
    assert message["From"] == "Thirsty Tea <orders@thirstytea.example>"
    assert message["To"] == "\"Colin <b> O'Hara & Sons\" <colin@example.com>"
    assert message["Cc"] == "cc@thirstytea.example"
    assert message["Reply-To"] == "support@thirstytea.example"
    assert message["Bcc"] is None
    assert message["Subject"] == "Order 5145827 is on backorder"
    assert message["Message-ID"] == f"<{rows[0].notification_id}@mail.thirstytea.example>"
    assert message["Date"] == "Wed, 30 Apr 2025 10:00:00 +0000"
    parts = {part.get_content_type(): part.get_content().replace("\r\n", "\n") for part in message.iter_parts()}
    assert set(parts) == {"text/plain", "text/html"}
    text, html = parts["text/plain"], parts["text/html"]
    assert text.startswith("Dear Colin <b> O'Hara & Sons,\nOrder 5145827:\n")
    assert ("- Cat <Hammock> (cat-hammock): 2 ordered, 2 backordered, expected date unknown\n"
            "- SC-Tees: 3 ordered, 0 backordered") in text
    assert text.endswith("Colin <b> O'Hara & Sons\n12 Harbor Way\nLakewood, NJ 08701\nUS\nThirsty <Tea>\n"
                         "Thirsty <Tea> & Co\n1 Main St, Lakewood\n")
    assert "<p>Dear Colin &lt;b&gt; O&#x27;Hara &amp; Sons,</p>" in html
    assert "<td>cat-hammock</td><td>Cat &lt;Hammock&gt;</td>" in html
    assert "<p>Order 5145827</p>" in html
    # The address (its name is the customer's) and the footer, escaped, lines as <br>.
    assert ("<p>Colin &lt;b&gt; O&#x27;Hara &amp; Sons<br>\n12 Harbor Way<br>\nLakewood, NJ 08701<br>\nUS</p>"
            in html)
    assert "<p>Thirsty &lt;Tea&gt;</p>" in html
    assert "<footer>Thirsty &lt;Tea&gt; &amp; Co<br>\n1 Main St, Lakewood</footer>" in html
    assert [(r.status, r.attempts, r.recipient, r.message_id) for r in rows] == [
        (SENT, 1, "colin@example.com", message["Message-ID"])]


async def test_starttls_with_a_certificate_made_here_and_authentication(database, tmp_path, tls, monkeypatch):
    handler = Recorder()
    monkeypatch.setenv("NOTIFIER_SMTP_PASSWORD", "pa55-w0rd-xyz")
    with smtp_server(handler, tls_context=tls.server_context, require_starttls=True, auth_required=True,
                     authenticator=Authenticator("mailer", "pa55-w0rd-xyz")) as server:
        profile = {"security": "starttls", "ca_file": str(tls.ca_file), "username": "mailer",
                   "password_env": "NOTIFIER_SMTP_PASSWORD"}
        async with notifier(database, config_for(server.port, tmp_path, profile=profile)) as service:
            tally = await take_in_and_deliver(service, [order_created("o1")], [backorder_changed("o1")])
    assert tally.sent == {"smtp": 1}
    [got] = handler.received
    assert got.login == "mailer"
    assert got.message["To"] == "Colin Customerson <colin@example.com>"


async def test_implicit_tls_verifies_the_certificate_by_default(database, tmp_path, tls):
    handler = Recorder()
    with smtp_server(handler, ssl_context=tls.server_context) as server:
        trusted = config_for(server.port, tmp_path, profile={"security": "tls", "ca_file": str(tls.ca_file)})
        async with notifier(database, trusted) as service:
            assert (await take_in_and_deliver(service, [order_created("o1")], [backorder_changed("o1")])).sent == {
                "smtp": 1}
        # The same server without its CA: the certificate is not trusted, nothing is sent, and
        # the failure is recorded (retrying would not help).
        untrusted = config_for(server.port, tmp_path, profile={"security": "tls"})
        async with notifier(database, untrusted) as service:
            tally = await take_in_and_deliver(service, [order_created("o2")], [backorder_changed("o2")])
            [row] = await service.store.notifications(order_id="o2")
    assert tally.failed == 1 and len(handler.received) == 1
    assert row.status == FAILED and row.attempts == 1
    assert row.last_error.startswith("TLS certificate not trusted")


async def test_451_then_250_is_retried_and_one_email_arrives(database, tmp_path):
    handler = Recorder(replies=["451 4.3.0 Try again later"])
    with smtp_server(handler) as server:
        async with notifier(database, config_for(server.port, tmp_path)) as service:
            tally = await take_in_and_deliver(service, [order_created("o1")], [backorder_changed("o1")])
            [row] = await service.store.notifications()
    assert handler.data_commands == 2 and len(handler.received) == 1
    assert tally.retried == 1 and tally.sent == {"smtp": 1}
    assert (row.status, row.attempts) == (SENT, 2)


@pytest.mark.parametrize("where", ["RCPT", "DATA"])
async def test_550_is_recorded_failed_with_the_server_reply(database, tmp_path, where):
    reply = "550 5.1.1 Mailbox unavailable"
    handler = Recorder(replies=[reply] if where == "DATA" else [],
                       refuse={"colin@example.com": reply} if where == "RCPT" else {})
    with smtp_server(handler) as server:
        config = config_for(server.port, tmp_path, template={"cc": [], "bcc": []})
        async with notifier(database, config) as service:
            tally = await take_in_and_deliver(service, [order_created("o1")], [backorder_changed("o1")])
            [row] = await service.store.notifications(status=FAILED)
    assert tally.failed == 1 and tally.retried == 0 and handler.received == []
    assert row.order_id == "o1" and row.attempts == 1
    assert "550 5.1.1 Mailbox unavailable" in row.last_error


async def test_the_same_change_twice_and_a_full_replay_send_one_email(database, tmp_path):
    handler = Recorder()
    orders = [order_created("o1"), order_created("o2")]
    changes = [backorder_changed("o1"), backorder_changed("o2", status="Partial", previous="None",
                                                          lines=(("1", "cat-hammock", 2, 1),))]
    with smtp_server(handler) as server:
        async with notifier(database, config_for(server.port, tmp_path)) as service:
            await take_in_and_deliver(service, orders, changes)
            # Redelivered: the same record again at a later offset (a producer retry), in the
            # same batch and in a later one.
            await take_in_and_deliver(service, [], [changes[0], changes[0]])
            await append(service, {"changes:0": [changes[1]]})
            # A full replay: every record again from another source (the topics read again
            # from the beginning into a new consumer, the relay sending the outbox again).
            await take_in_and_deliver(service, [], [])
            await service.take_in({"replay:orders": list(enumerate(orders)),
                                   "replay:changes": list(enumerate(changes))})
            tally = await service.deliver_all()
            rows = await service.store.notifications()
    assert tally.delivered == 0
    assert sorted(len(r.rcpt_tos) for r in handler.received) == [3, 3]
    assert sorted(r.message["To"].addresses[0].addr_spec for r in handler.received) == [
        "colin@example.com", "colin@example.com"]
    assert sorted((r.order_id, r.status) for r in rows) == [("o1", SENT), ("o2", SENT)]


async def test_a_template_without_profile_is_recorded_failed_then_resent_once_fixed(database, tmp_path):
    handler = Recorder()
    with smtp_server(handler) as server:
        broken = config_for(server.port, tmp_path, template={"profile": None})
        async with notifier(database, broken) as service:
            tally = await take_in_and_deliver(service, [order_created("o1")], [backorder_changed("o1")])
            [row] = await service.store.notifications(status=FAILED)
            assert tally.failed == 1 and handler.received == []
            assert (row.order_id, row.last_error) == ("o1", "template 'notice' has no SMTP profile")
            renamed = config_for(server.port, tmp_path, template={"profile": "elsewhere"})
            service.config = renamed
            await service.store.requeue_failed(ids=[row.notification_id], now=0)
            await service.deliver_all()
            [row] = await service.store.notifications(status=FAILED)
            assert row.last_error == "template 'notice' names SMTP profile 'elsewhere', which is not defined"
            service.config = config_for(server.port, tmp_path)
            assert await service.store.requeue_failed(order_id="o1", now=0) == [row.notification_id]
            assert (await service.deliver_all()).sent == {"smtp": 1}
            assert await statuses(service) == {"o1": SENT}
    assert len(handler.received) == 1


async def test_a_wrong_password_fails_without_the_password_in_errors_or_logs(database, tmp_path, tls, monkeypatch):
    handler = Recorder()
    secret = "Wr0ng-Secret-4711"
    monkeypatch.setenv("NOTIFIER_SMTP_PASSWORD", secret)
    log_lines = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log_lines)
    logs.configure("debug")
    try:
        with smtp_server(handler, tls_context=tls.server_context, auth_required=True,
                         authenticator=Authenticator("mailer", "the-right-one")) as server:
            profile = {"security": "starttls", "ca_file": str(tls.ca_file), "username": "mailer",
                       "password_env": "NOTIFIER_SMTP_PASSWORD"}
            async with notifier(database, config_for(server.port, tmp_path, profile=profile)) as service:
                tally = await take_in_and_deliver(service, [order_created("o1")], [backorder_changed("o1")])
                [row] = await service.store.notifications(status=FAILED)
    finally:
        monkeypatch.undo()
        logs.configure()
    assert tally.failed == 1 and handler.received == []
    assert row.last_error.startswith("authentication refused: 535")
    output = log_lines.getvalue()
    assert "notification_failed" in output and "535" in output
    assert secret not in output and secret not in row.last_error


async def test_connection_refused_is_retried_then_recorded_failed(database, tmp_path):
    port = free_port()  # nothing listens there
    async with notifier(database, config_for(port, tmp_path)) as service:
        tally = await take_in_and_deliver(service, [order_created("o1")], [backorder_changed("o1")])
        [row] = await service.store.notifications()
    assert tally.retried == 2 and tally.failed == 1
    assert row.status == FAILED and row.attempts == 3
    assert row.last_error.startswith("gave up after 3 attempts: connection failed")


async def test_a_change_before_its_order_waits_and_is_sent_when_the_order_arrives(database, tmp_path):
    handler = Recorder()
    with smtp_server(handler) as server:
        async with notifier(database, config_for(server.port, tmp_path)) as service:
            await take_in_and_deliver(service, [], [backorder_changed("o1")])
            assert await statuses(service) == {"o1": PENDING} and handler.received == []
            # The order topic catches up; the split-off order's change came before both.
            split = json.dumps({"specversion": "1.0", "id": "split-1", "source": "/oms", "type": "OrderSplit",
                                "time": "2025-04-30T11:00:00Z",
                                "data": {"order_id": "o1", "new_order_id": "o1-S1",
                                         "lines": [{"line_id": "1", "qty": 1, "new_line_id": "2"}]}})
            await append(service, {"changes:0": [backorder_changed("o1-S1", lines=(("2", "cat-hammock", 1, 1),))]})
            assert await statuses(service) == {"o1": PENDING, "o1-S1": PENDING}
            await take_in_and_deliver(service, [order_created("o1"), split], [])
            assert await statuses(service) == {"o1": SENT, "o1-S1": SENT}
    assert sorted(r.message["Subject"] for r in handler.received) == [
        "Order o1 is on backorder", "Order o1-S1 is on backorder"]
    assert all(r.rcpt_tos[0] == "colin@example.com" for r in handler.received)


async def test_the_cool_down_suppresses_a_flapping_order(database, tmp_path):
    handler = Recorder()
    flapping = [backorder_changed("o1", id="c1", time="2025-04-30T10:00:00Z"),
                backorder_changed("o1", id="c2", previous="Full", status="None", time="2025-04-30T10:05:00Z",
                                  lines=(("1", "cat-hammock", 2, 0),)),
                backorder_changed("o1", id="c3", time="2025-04-30T10:10:00Z")]
    with smtp_server(handler) as server:
        async with notifier(database, config_for(server.port, tmp_path, cooldown=60)) as service:
            await take_in_and_deliver(service, [order_created("o1")], flapping[:1])
            await take_in_and_deliver(service, [], flapping[1:])
            rows = await service.store.notifications()
    assert [r.status for r in rows] == [SENT, "suppressed"]
    assert len(handler.received) == 1


async def test_a_claim_left_by_a_dead_process_is_sent_again_with_the_same_message_id(database, tmp_path):
    handler = Recorder()
    with smtp_server(handler) as server:
        async with notifier(database, config_for(server.port, tmp_path)) as service:
            await append(service, {"orders:0": [order_created("o1")], "changes:0": [backorder_changed("o1")]})
            # A process claims the notification, the server accepts the message, and the
            # process dies before recording it: the crash window.
            [claimed] = await service.store.claim_due("dead-process", now=0, limit=10)
            template = service.config.templates["notice"]
            facts = await service.store.facts(["o1"])
            from notifier.delivery import open_channel
            from notifier.service import build_message
            message = build_message(service.config, template, claimed.notification_id, "o1", "c1", claimed.change,
                                    claimed.event_time, facts)
            channel = open_channel(service.config.profiles["main"])
            await channel.send(message)
            await channel.close()
            assert await statuses(service) == {"o1": "sending"}
            # A young claim is left alone; once the lease is over it is put back and sent again.
            assert await service.store.requeue_claimed(older_than=3600) == 0
            assert await service.store.requeue_claimed(older_than=0) == 1
            assert await statuses(service) == {"o1": QUEUED}
            await service.deliver_all()
            assert await statuses(service) == {"o1": SENT}
    first, second = handler.received
    assert first.data == second.data  # the repeat is byte for byte the same message
    assert first.message["Message-ID"] == second.message["Message-ID"]


async def test_an_unreachable_server_is_tried_once_per_round(database, tmp_path):
    port = free_port()  # nothing listens there
    async with notifier(database, config_for(port, tmp_path)) as service:
        await append(service, {"orders:0": [order_created("o1"), order_created("o2")],
                               "changes:0": [backorder_changed("o1"), backorder_changed("o2")]})
        first = await service.deliver_due()
        attempts = sorted((r.status, r.attempts) for r in await service.store.notifications())
        # One connection attempt; the other notification waits for the next round untried.
        assert first.retried == 2 and attempts == [(QUEUED, 0), (QUEUED, 1)]
        await service.deliver_all(wait_for_retries=10)
        rows = await service.store.notifications()
    assert [(r.status, r.attempts) for r in rows] == [(FAILED, 3), (FAILED, 3)]
    assert all(r.last_error.startswith("gave up after 3 attempts: connection failed") for r in rows)


async def test_a_customer_refused_for_now_is_retried_and_the_copies_go_once(database, tmp_path):
    # 450 for the customer's RCPT while the Cc and Bcc are taken: nothing may go before the
    # customer's address is accepted, or the retry would send the copies a second time.
    handler = Recorder(refuse_once={"colin@example.com": "450 4.2.1 Mailbox busy, try later"})
    with smtp_server(handler) as server:
        async with notifier(database, config_for(server.port, tmp_path)) as service:
            tally = await take_in_and_deliver(service, [order_created("o1")], [backorder_changed("o1")])
            [row] = await service.store.notifications()
    assert handler.data_commands == 1
    [got] = handler.received
    assert got.rcpt_tos == ["colin@example.com", "cc@thirstytea.example", "archive@thirstytea.example"]
    assert handler.rcpt_commands.count("archive@thirstytea.example") == 2  # offered twice, sent once
    assert tally.retried == 1 and tally.sent == {"smtp": 1}
    assert (row.status, row.attempts, row.last_error) == (SENT, 2, None)


async def test_a_customer_refused_for_good_fails_and_no_copy_goes(database, tmp_path):
    handler = Recorder(refuse={"colin@example.com": "550 5.1.1 Mailbox unavailable"})
    with smtp_server(handler) as server:
        async with notifier(database, config_for(server.port, tmp_path)) as service:
            tally = await take_in_and_deliver(service, [order_created("o1"), order_created("o2", email_address="ann@example.com")],
                                              [backorder_changed("o1"), backorder_changed("o2")])
            rows = {r.order_id: r for r in await service.store.notifications()}
    assert tally.failed == 1 and tally.retried == 0 and tally.sent == {"smtp": 1}
    assert rows["o1"].status == FAILED and rows["o1"].attempts == 1
    assert rows["o1"].last_error.startswith("the customer's address was refused: 550 5.1.1 Mailbox unavailable")
    # The next message of the round goes on after the reset.
    [got] = handler.received
    assert got.rcpt_tos[0] == "ann@example.com" and rows["o2"].status == SENT


async def test_a_server_without_starttls_fails_at_once_for_a_starttls_profile(database, tmp_path):
    # A real server with no TLS at all: it does not offer STARTTLS, and asking again later
    # will not change that; nothing is sent in clear.
    handler = Recorder()
    with smtp_server(handler) as server:
        async with notifier(database, config_for(server.port, tmp_path, profile={"security": "starttls"})) as service:
            tally = await take_in_and_deliver(service, [order_created("o1")], [backorder_changed("o1")])
            [row] = await service.store.notifications()
    assert tally.retried == 0 and tally.failed == 1 and handler.received == []
    assert (row.status, row.attempts) == (FAILED, 1)
    assert row.last_error == (f"the server 127.0.0.1:{server.port} does not offer STARTTLS, "
                              "which the profile requires")


async def test_a_lone_surrogate_in_a_name_refuses_that_order_and_delivery_goes_on(database, tmp_path):
    # The JSON escape "\ud800" decodes to a lone surrogate, which is not valid Unicode: the
    # contract refuses the order (as the recalculator does), and the other email goes out.
    handler = Recorder()
    with smtp_server(handler) as server:
        async with notifier(database, config_for(server.port, tmp_path)) as service:
            tally = await take_in_and_deliver(
                service, [order_created("o1", first="Jo\ud800"), order_created("o2", email_address="ann@example.com")],
                [backorder_changed("o2")])
            assert await statuses(service) == {"o2": SENT}
            [letter] = await service.store.dead_letters()
            assert "first_name" in letter.reason
    assert tally.sent == {"smtp": 1}
    assert [r.message["To"] for r in handler.received] == ["Colin Customerson <ann@example.com>"]


async def test_the_password_file_is_read_at_each_connection_and_never_shown(database, tmp_path, tls, monkeypatch):
    handler = Recorder()
    secret_file = tmp_path / "smtp-password"
    secret_file.write_text("Wr0ng-From-File-4711\n")
    log_lines = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log_lines)
    logs.configure("debug")
    try:
        with smtp_server(handler, tls_context=tls.server_context, auth_required=True,
                         authenticator=Authenticator("mailer", "R1ght-From-File-0815")) as server:
            profile = {"security": "starttls", "ca_file": str(tls.ca_file), "username": "mailer",
                       "password_file": str(secret_file)}
            async with notifier(database, config_for(server.port, tmp_path, profile=profile)) as service:
                tally = await take_in_and_deliver(service, [order_created("o1")], [backorder_changed("o1")])
                [row] = await service.store.notifications(status=FAILED)
                assert tally.failed == 1 and handler.received == []
                assert row.last_error.startswith("authentication refused: 535")
                # The operator fixes the file; the resend reads it again and logs in.
                secret_file.write_text("R1ght-From-File-0815\n")
                await service.store.requeue_failed(order_id="o1", now=0)
                assert (await service.deliver_all()).sent == {"smtp": 1}
    finally:
        monkeypatch.undo()
        logs.configure()
    [got] = handler.received
    assert got.login == "mailer"
    output = log_lines.getvalue()
    assert "notification_failed" in output and "535" in output
    for secret in ("Wr0ng-From-File-4711", "R1ght-From-File-0815"):
        assert secret not in output and secret not in row.last_error


async def test_a_reply_slower_than_the_timeout_is_retried_and_the_repeat_has_the_same_message_id(database, tmp_path):
    # The server keeps the message but answers the end of DATA after the profile's timeout:
    # to the notifier that is a failed attempt, so the message goes again. This is the
    # second window in which a repeat can happen (docs/notifier.md); the receiving system
    # sees the same Message-ID and the same bytes.
    handler = Recorder(slow_acceptance=[2.0])
    with smtp_server(handler) as server:
        config = config_for(server.port, tmp_path, profile={"timeout_seconds": 0.5})
        async with notifier(database, config) as service:
            tally = await take_in_and_deliver(service, [order_created("o1")], [backorder_changed("o1")])
            [row] = await service.store.notifications()
    assert tally.retried == 1 and tally.sent == {"smtp": 1}
    assert (row.status, row.attempts) == (SENT, 2)
    first, second = handler.received
    assert first.data == second.data
    assert first.message["Message-ID"] == second.message["Message-ID"] == row.message_id


class EchoingAuthenticator:
    """A server that refuses the login and echoes what it was given in its reply, as some
    do (the base64 of the AUTH PLAIN exchange, the password itself)."""

    def __call__(self, server, session, envelope, mechanism, auth_data):
        login, password = auth_data.login.decode(), auth_data.password.decode()
        plain = base64.b64encode(f"\0{login}\0{password}".encode()).decode()
        return AuthResult(success=False, handled=False,
                          message=f"535 5.7.8 refused {login}/{password} (AUTH PLAIN {plain}) password={password}")


async def test_a_server_echoing_the_credentials_leaves_them_in_no_error_and_no_log(database, tmp_path, tls,
                                                                                  monkeypatch):
    handler = Recorder()
    secret = "S3cret-Echoed-0815"
    monkeypatch.setenv("NOTIFIER_SMTP_PASSWORD", secret)
    log_lines = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log_lines)
    logs.configure("debug")
    try:
        with smtp_server(handler, tls_context=tls.server_context, auth_required=True,
                         authenticator=EchoingAuthenticator()) as server:
            profile = {"security": "starttls", "ca_file": str(tls.ca_file), "username": "mailer",
                       "password_env": "NOTIFIER_SMTP_PASSWORD", "max_attempts": 2}
            async with notifier(database, config_for(server.port, tmp_path, profile=profile)) as service:
                await take_in_and_deliver(service, [order_created("o1")], [backorder_changed("o1")])
                [row] = await service.store.notifications(status=FAILED)
    finally:
        monkeypatch.undo()
        logs.configure()
    encoded = base64.b64encode(f"\0mailer\0{secret}".encode()).decode()
    assert row.last_error.startswith("authentication refused: 535 5.7.8 refused mailer/[redacted]")
    output = log_lines.getvalue()
    assert "notification_failed" in output
    for stored in (row.last_error, output):
        assert secret not in stored and encoded not in stored
