"""The built-in configuration used when no file is given: one template assigned to every
company, sent through a file profile that writes each message as an `.eml` file under
`<data dir>/mail` — `make run` needs no mail server."""

from __future__ import annotations

from pathlib import Path

from .config import ANY_COMPANY, DEFAULT_COOLDOWN_MINUTES, NotifierConfig, from_mapping
from .domain.rules import SCENARIO, SLIP_SCENARIO

DEFAULT_TEMPLATE = "backorder-notice"
SLIP_TEMPLATE = "expected-date-slip"
DEFAULT_PROFILE = "local-outbox"

SUBJECT = "Your order #?OrderID?# is on backorder"

TEXT = """\
Dear #?FirstName?# #?LastName?#,

Not everything in your order #?OrderID?# (placed #?OrderDate?#) is in stock right
now. We will ship the backordered items as soon as they arrive:

#?OrderItemsDetails2?#

Expected date of the backordered items: #?ExpectedDate?#

They will go to:
#?ShippingAddress?#

Thank you for your patience,
#?CompanyName?#
#?FooterInfoCompany?#
"""

HTML = """\
<!DOCTYPE html>
<html><body>
<p>Dear #?FirstName?# #?LastName?#,</p>
<p>Not everything in your order <b>#?OrderID?#</b> (placed #?OrderDate?#) is in stock right
now. We will ship the backordered items as soon as they arrive:</p>
#?OrderItemsDetails?#
<p>Expected date of the backordered items: <b>#?ExpectedDate?#</b></p>
<p>They will go to:<br>
#?ShippingAddressHtml?#</p>
<p>Thank you for your patience,<br>#?CompanyName?#</p>
<p style="color:#777;font-size:small">#?FooterInfoCompany?#</p>
</body></html>
"""


# A slip notice goes only when the order's expected date is known and later than the one
# its last email gave (and only when `slip_emails` is on).
SLIP_SUBJECT = "New expected date for your order #?OrderID?#"

SLIP_TEXT = """\
Dear #?FirstName?# #?LastName?#,

The backordered items of your order #?OrderID?# (placed #?OrderDate?#) will arrive later
than we last told you. We now expect them by #?ExpectedDate?#:

#?OrderItemsDetails2?#

We are sorry for the wait. They will go to:
#?ShippingAddress?#

#?CompanyName?#
#?FooterInfoCompany?#
"""

SLIP_HTML = """\
<!DOCTYPE html>
<html><body>
<p>Dear #?FirstName?# #?LastName?#,</p>
<p>The backordered items of your order <b>#?OrderID?#</b> (placed #?OrderDate?#) will arrive
later than we last told you. We now expect them by <b>#?ExpectedDate?#</b>:</p>
#?OrderItemsDetails?#
<p>We are sorry for the wait. They will go to:<br>
#?ShippingAddressHtml?#</p>
<p>#?CompanyName?#</p>
<p style="color:#777;font-size:small">#?FooterInfoCompany?#</p>
</body></html>
"""


def default_mapping(data_dir: Path) -> dict:
    return {
        "notifier": {"message_id_domain": "backorders.localhost", "cooldown_minutes": DEFAULT_COOLDOWN_MINUTES,
                     "slip_emails": False},
        "profiles": {DEFAULT_PROFILE: {"type": "file", "directory": str(Path(data_dir) / "mail")}},
        "templates": {
            DEFAULT_TEMPLATE: {
                "subject": SUBJECT,
                "sender_name": "Customer Service",
                "sender_email": "no-reply@backorders.localhost",
                "profile": DEFAULT_PROFILE,
                "text": TEXT,
                "html": HTML,
            },
            SLIP_TEMPLATE: {
                "subject": SLIP_SUBJECT,
                "sender_name": "Customer Service",
                "sender_email": "no-reply@backorders.localhost",
                "profile": DEFAULT_PROFILE,
                "text": SLIP_TEXT,
                "html": SLIP_HTML,
            },
        },
        "companies": {
            ANY_COMPANY: {
                "footer": "This message was sent automatically; please do not reply to it.",
                "assignments": {SCENARIO: DEFAULT_TEMPLATE, SLIP_SCENARIO: SLIP_TEMPLATE},
            }
        },
    }


def default_config(data_dir: Path) -> NotifierConfig:
    return from_mapping(default_mapping(data_dir), "built-in default", base=Path.cwd())
