"""The email of a notification: headers, recipients, both parts, no header injection, the
same bytes every time."""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from notifier.domain.message import MessageError, MessageTemplate, compose
from notifier.domain.placeholders import ItemLine, MessageFacts
from notifier.domain.templates import parse

TEMPLATE = MessageTemplate(
    name="notice",
    subject=parse("notice", "subject", "Order #?OrderID?# for #?FirstName?#"),
    sender_email="orders@thirstytea.example",
    sender_name="Thirsty Tea",
    reply_to=("support@thirstytea.example",),
    cc=("cc@thirstytea.example",),
    bcc=("archive@thirstytea.example",),
    text=parse("notice", "text", "Hi #?FirstName?#\n#?OrderItemsDetails2?#"),
    html=parse("notice", "html", "<p>Hi #?FirstName?#</p>#?OrderItemsDetails?#"),
    profile="main",
)
FACTS = MessageFacts("5145827", "Thirsty Tea", "", "Full",
                     {"email": "colin@example.com", "first_name": "Colin", "last_name": "Customerson"},
                     None, (ItemLine("cat-hammock", "Cat Hammock", 2, 2),))
WHEN = datetime(2025, 4, 30, 15, 19, tzinfo=UTC)


def build(template=TEMPLATE, facts=FACTS):
    return compose(template, facts, message_id="<n-1@mail.example>", date=WHEN)


def test_headers_recipients_and_both_parts():
    composed = build()
    message = email.message_from_bytes(composed.data, policy=email.policy.default)
    assert message["From"] == "Thirsty Tea <orders@thirstytea.example>"
    assert message["To"] == "Colin Customerson <colin@example.com>"
    assert message["Cc"] == "cc@thirstytea.example"
    assert message["Reply-To"] == "support@thirstytea.example"
    assert message["Subject"] == "Order 5145827 for Colin"
    assert message["Message-ID"] == "<n-1@mail.example>"
    assert message["Date"] == "Wed, 30 Apr 2025 15:19:00 +0000"
    assert message["Bcc"] is None  # Bcc goes to the envelope only
    assert composed.recipients == ("colin@example.com", "cc@thirstytea.example", "archive@thirstytea.example")
    assert composed.sender == "orders@thirstytea.example"
    parts = {part.get_content_type(): part.get_content() for part in message.iter_parts()}
    assert set(parts) == {"text/plain", "text/html"}
    assert "Cat Hammock (cat-hammock): 2 ordered, 2 backordered" in parts["text/plain"]
    assert "<td>Cat Hammock</td>" in parts["text/html"]
    assert b"\n" not in composed.data.replace(b"\r\n", b"")  # every line ends in CRLF


def test_the_same_notification_gives_the_same_bytes():
    assert build().data == build().data


@pytest.mark.parametrize("field", ["first_name", "last_name", "email"])
def test_cr_or_lf_from_the_customer_never_reaches_a_header(field):
    customer = {**FACTS.customer, field: FACTS.customer[field] + "\r\nBcc: victim@example.com"}
    with pytest.raises(MessageError, match="contains CR or LF"):
        build(facts=replace(FACTS, customer=customer))


def test_addresses_that_are_not_email_addresses_are_refused():
    with pytest.raises(MessageError, match="not a valid email address"):
        build(facts=replace(FACTS, customer={**FACTS.customer, "email": "colin at example"}))
    with pytest.raises(MessageError, match="no customer email address"):
        build(facts=replace(FACTS, customer={"first_name": "Colin"}))


def test_non_ascii_names_are_encoded_and_a_single_body_is_not_multipart():
    facts = replace(FACTS, customer={**FACTS.customer, "first_name": "José", "last_name": "Ñúñez"})
    composed = build(template=replace(TEMPLATE, html=None), facts=facts)
    assert composed.data.isascii()
    message = email.message_from_bytes(composed.data, policy=email.policy.default)
    assert message["To"] == "José Ñúñez <colin@example.com>"
    assert message["Subject"] == "Order 5145827 for José"
    assert message.get_content_type() == "text/plain"
    assert message.get_content().startswith("Hi José")


def test_a_lone_surrogate_from_the_customer_is_replaced_not_fatal():
    # "\ud800" arrives from a JSON escape; no charset can encode it.
    customer = {**FACTS.customer, "first_name": "Jo\ud800"}
    composed = build(facts=replace(FACTS, customer=customer))
    message = email.message_from_bytes(composed.data, policy=email.policy.default)
    assert message["To"] == "Jo\ufffd Customerson <colin@example.com>"
    assert message["Subject"] == "Order 5145827 for Jo\ufffd"
    parts = {part.get_content_type(): part.get_content() for part in message.iter_parts()}
    assert parts["text/plain"].startswith("Hi Jo\ufffd\r\n")
    assert "<p>Hi Jo\ufffd</p>" in parts["text/html"]
    with pytest.raises(MessageError, match="not a valid email address"):
        build(facts=replace(FACTS, customer={**FACTS.customer, "email": "colin\ud800@example.com"}))


@pytest.mark.parametrize("facts", [
    replace(FACTS, order_id="5145827\r\nBcc: victim@example.com"),  # OrderID comes from the event
    replace(FACTS, company_name="Thirsty Tea\nBcc: victim@example.com"),  # a company id as its name
])
def test_cr_or_lf_in_a_subject_value_never_reaches_the_header(facts):
    template = replace(TEMPLATE, subject=parse("notice", "subject", "Order #?OrderID?# from #?CompanyName?#"))
    with pytest.raises(MessageError, match="Subject header value contains CR or LF"):
        build(template=template, facts=facts)
