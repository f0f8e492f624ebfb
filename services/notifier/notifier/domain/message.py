"""Building the email of one notification (pure: the same inputs give the same bytes).

A value holding a lone surrogate (which no charset can encode) gets U+FFFD in its place.
Headers take no CR or LF from anywhere — a customer's name with a line break fails the
notification instead of adding a header. Bcc recipients go to the envelope only. The
Message-ID comes from the notification's id and the Date from the business time of the
change, so a message sent again is byte for byte the same and a receiving system can tell
the repeat. Bodies are UTF-8, quoted-printable; lines end in CRLF.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email import policy as email_policy
from email.charset import QP, Charset
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import format_datetime, formataddr

from .placeholders import MessageFacts, values
from .templates import TemplateText

_UTF8 = Charset("utf-8")
_UTF8.header_encoding = QP
_UTF8.body_encoding = QP
_WIRE = email_policy.compat32.clone(linesep="\r\n")
# An ASCII addr-spec (dot-atom local part, host name domain): what any SMTP server takes
# without the SMTPUTF8 extension.
_ADDR_SPEC = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+\Z"
)


# A lone surrogate (a broken `\ud800` escape in the JSON a value came from) cannot be
# encoded in any charset: it is replaced with U+FFFD rather than failing the message.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _scrub(value: str) -> str:
    return _LONE_SURROGATE.sub("\ufffd", value)


class MessageError(ValueError):
    """The message cannot be built (a header value with CR/LF, an unusable address)."""


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    name: str
    subject: TemplateText
    sender_email: str
    sender_name: str | None = None
    reply_to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    html: TemplateText | None = None
    text: TemplateText | None = None
    profile: str | None = None


@dataclass(frozen=True, slots=True)
class Composed:
    message_id: str
    sender: str  # envelope sender
    recipients: tuple[str, ...]  # To, Cc and Bcc
    to: str
    data: bytes


def _clean(header: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise MessageError(f"{header} header value contains CR or LF")
    return value


def checked_address(header: str, value: str) -> str:
    """`value` as an address for `header`; raises MessageError."""
    return _addr_spec(header, value)


def _addr_spec(header: str, value: str) -> str:
    address = _clean(header, value).strip()
    if not _ADDR_SPEC.match(address):
        raise MessageError(f"{header} address {address!r} is not a valid email address")
    return address


def _mailbox(header: str, addr_spec: str, display_name: str = "") -> tuple[str, str]:
    return _addr_spec(header, addr_spec), _clean(header, display_name).strip()


def _header_text(value: str) -> str | Header:
    return value if value.isascii() else Header(value, _UTF8)


def _format(mailbox: tuple[str, str]) -> str:
    addr, name = mailbox
    return formataddr((name, addr), charset=_UTF8) if name else addr


def compose(
    template: MessageTemplate,
    facts: MessageFacts,
    *,
    message_id: str,
    date: datetime,
) -> Composed:
    """The message for `facts` from `template`; raises MessageError."""
    found = {name: _scrub(value) for name, value in values(facts).items()}
    email_address = _scrub(str(facts.customer.get("email") or "")).strip()
    if not email_address:
        raise MessageError(f"order {facts.order_id} has no customer email address")
    full_name = _scrub(" ".join(
        str(facts.customer.get(k) or "").strip() for k in ("first_name", "last_name")
    ).strip())
    to = _mailbox("To", email_address, full_name)
    sender = _mailbox("From", template.sender_email, template.sender_name or "")
    cc = [_addr_spec("Cc", a) for a in template.cc]
    bcc = [_addr_spec("Bcc", a) for a in template.bcc]
    reply_to = [_addr_spec("Reply-To", a) for a in template.reply_to]
    subject = _clean("Subject", template.subject.render(found))
    _clean("Message-ID", message_id)

    text = template.text.render(found) if template.text else None
    body_html = template.html.render(found) if template.html else None
    parts = [_part(body, subtype) for body, subtype in ((text, "plain"), (body_html, "html")) if body is not None]
    if not parts:
        raise MessageError(f"template {template.name!r} has no body")
    if len(parts) == 1:
        message = parts[0]
    else:
        # A fixed boundary keeps the bytes deterministic (it is random otherwise).
        message = MIMEMultipart("alternative", boundary=f"=_{message_id.strip('<>').split('@')[0]}")
        for part in parts:
            del part["MIME-Version"]  # once, on the message itself
            message.attach(part)
    message["From"] = _format(sender)
    message["To"] = _format(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    if reply_to:
        message["Reply-To"] = ", ".join(reply_to)
    message["Subject"] = _header_text(subject)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    data = message.as_bytes(policy=_WIRE)
    return Composed(message_id, sender[0], (to[0], *cc, *bcc), to[0], data)


def _part(body: str, subtype: str) -> MIMENonMultipart:
    part = MIMENonMultipart("text", subtype)
    part.set_payload(body if body.endswith("\n") else body + "\n", _UTF8)
    return part
