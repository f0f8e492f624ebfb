"""How SMTP failures are judged (retry later, or record failed) and the retry schedule."""

from __future__ import annotations

import ssl

import aiosmtplib
import pytest
from notifier.config import SmtpProfile
from notifier.delivery.smtp import classify


@pytest.mark.parametrize(("error", "transient", "reason"), [
    (aiosmtplib.SMTPDataError(451, "4.3.0 Try again later"), True, "message refused: 451 4.3.0 Try again later"),
    (aiosmtplib.SMTPDataError(550, "5.1.1 Mailbox unavailable"), False, "message refused: 550 5.1.1 Mailbox unavailable"),
    (aiosmtplib.SMTPAuthenticationError(535, "5.7.8 Bad credentials"), False, "authentication refused: 535"),
    (aiosmtplib.SMTPAuthenticationError(454, "4.7.0 Temporary failure"), True, "authentication refused: 454"),
    (aiosmtplib.SMTPSenderRefused(553, "5.7.1 Not yours", "a@b.c"), False, "sender refused: 553"),
    (aiosmtplib.SMTPConnectResponseError(421, "Service not available"), True, "server replied: 421"),
    (aiosmtplib.SMTPServerDisconnected("Connection lost"), True, "connection failed: Connection lost"),
    (aiosmtplib.SMTPConnectTimeoutError("Timed out connecting"), True, "timed out: Timed out connecting"),
    (ConnectionRefusedError(111, "Connection refused"), True, "connection failed"),
])
def test_4xx_and_connection_problems_are_retried_5xx_are_not(error, transient, reason):
    judged = classify(error)
    assert judged.transient is transient
    assert judged.reason.startswith(reason)


def test_refused_recipients_are_retried_only_when_one_was_refused_for_now():
    def refused(*codes):
        return aiosmtplib.SMTPRecipientsRefused(
            [aiosmtplib.SMTPRecipientRefused(code, "no", f"r{code}@example.com") for code in codes])

    assert classify(refused(550)).transient is False
    assert classify(refused(550, 452)).transient is True
    assert "r550@example.com: 550 no" in classify(refused(550)).reason


def test_an_untrusted_certificate_is_not_retried_even_when_wrapped():
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_message = "self-signed certificate"
    wrapped = aiosmtplib.SMTPConnectError("Error connecting to 127.0.0.1 on port 2525")
    wrapped.__cause__ = verify
    judged = classify(wrapped)
    assert judged.transient is False
    assert judged.reason == "TLS certificate not trusted: self-signed certificate"


def test_retries_back_off_doubling_up_to_the_cap():
    profile = SmtpProfile(type="smtp", host="h", backoff_seconds=30, max_backoff_seconds=100)
    assert [profile.delay(n) for n in (1, 2, 3, 4)] == [30, 60, 100, 100]
    assert profile.effective_port == 587 and SmtpProfile(type="smtp", host="h", security="tls").effective_port == 465
