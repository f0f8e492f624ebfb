"""The placeholders a template may use (the seed's `#?Name?#` syntax) and their values.

Each value exists as plain text; a few are HTML fragments built here with every
customer-supplied value escaped. In an HTML body a plain-text value is escaped (line breaks
become `<br>`); an HTML value is inserted as built. HTML values cannot be used in the
subject or the plain-text body, and multi-line values cannot be used in the subject: such a
template is refused when it is loaded.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from .expected import UNKNOWN


@dataclass(frozen=True, slots=True)
class Placeholder:
    name: str
    description: str
    multiline: bool = False  # not in a subject
    html: bool = False  # an HTML fragment: only in HTML bodies


PLACEHOLDERS: dict[str, Placeholder] = {
    p.name: p
    for p in (
        Placeholder("FirstName", "the customer's first name"),
        Placeholder("LastName", "the customer's last name"),
        Placeholder("CustomerEmail", "the customer's email address"),
        Placeholder("OrderID", "the order id"),
        Placeholder("OrderDate", "the order date (YYYY-MM-DD)"),
        Placeholder("BackorderStatus", "Full or Partial"),
        Placeholder("CompanyName", "the company's name (its id when the configuration has none)"),
        Placeholder("OrderItemsDetails", "a table of the order's lines with their backorder quantities and "
                    "expected dates", html=True),
        Placeholder("OrderItemsDetails2", "the order's lines with their backorder quantities and expected dates, "
                    "as plain text", multiline=True),
        Placeholder("ExpectedDate", "the latest expected date of the order's backordered lines (YYYY-MM-DD), "
                    "or unknown when one of them has none"),
        Placeholder("ShippingAddress", "the shipping address, one part per line", multiline=True),
        Placeholder("ShippingAddressHtml", "the shipping address as HTML", html=True),
        Placeholder("FooterInfoCompany", "the company's footer text from the configuration", multiline=True),
    )
}


@dataclass(frozen=True, slots=True)
class ItemLine:
    sku: str
    name: str | None
    qty: int
    backorder_qty: int
    expected_day: str | None = None  # YYYY-MM-DD, when the line is backordered and a date is known

    @property
    def expected(self) -> str:
        """The line's expected date as shown: empty when nothing of it is backordered."""
        if self.backorder_qty <= 0:
            return ""
        return self.expected_day or UNKNOWN


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """Everything a template can show about one notification."""

    order_id: str
    company_name: str
    footer: str
    status: str  # Full or Partial
    customer: dict[str, Any]
    order_date: str | None
    items: tuple[ItemLine, ...]
    expected_day: str | None = None  # the order's (domain/expected.py: order_day)


def values(facts: MessageFacts) -> dict[str, str]:
    """Each placeholder's value: plain text, or HTML for the `html` placeholders."""
    customer = facts.customer
    address = customer.get("shipping_address") or {}
    address_lines = _address_lines(address)
    return {
        "FirstName": customer.get("first_name") or "",
        "LastName": customer.get("last_name") or "",
        "CustomerEmail": customer.get("email") or "",
        "OrderID": facts.order_id,
        "OrderDate": (facts.order_date or "")[:10],
        "BackorderStatus": facts.status,
        "CompanyName": facts.company_name,
        "OrderItemsDetails": _items_html(facts.items),
        "OrderItemsDetails2": _items_text(facts.items),
        "ExpectedDate": facts.expected_day or UNKNOWN,
        "ShippingAddress": "\n".join(address_lines),
        "ShippingAddressHtml": "<br>\n".join(html.escape(line) for line in address_lines),
        "FooterInfoCompany": facts.footer,
    }


def _address_lines(address: dict[str, Any]) -> list[str]:
    def part(key: str) -> str:
        return str(address.get(key) or "").strip()

    city_line = " ".join(p for p in (
        ", ".join(p for p in (part("city"), part("state")) if p), part("postal_code")) if p)
    lines = [part("name"), part("company"), part("street1"), part("street2"), city_line,
             part("country")]
    return [line for line in lines if line]


def _items_html(items: tuple[ItemLine, ...]) -> str:
    rows = "".join(
        "<tr>"
        f"<td>{html.escape(item.sku)}</td>"
        f"<td>{html.escape(item.name or '')}</td>"
        f'<td style="text-align:right">{item.qty}</td>'
        f'<td style="text-align:right">{item.backorder_qty}</td>'
        f"<td>{item.expected}</td>"
        "</tr>\n"
        for item in items
    )
    return (
        '<table class="order-items" border="1" cellpadding="4" cellspacing="0">\n'
        "<thead><tr><th>SKU</th><th>Item</th><th>Qty</th><th>Backordered</th><th>Expected</th></tr></thead>\n"
        f"<tbody>\n{rows}</tbody>\n</table>"
    )


def _items_text(items: tuple[ItemLine, ...]) -> str:
    lines = []
    for item in items:
        label = f"{item.name} ({item.sku})" if item.name else item.sku
        line = f"- {label}: {item.qty} ordered, {item.backorder_qty} backordered"
        if item.backorder_qty > 0:
            line += f", expected {item.expected_day}" if item.expected_day else f", expected date {UNKNOWN}"
        lines.append(line)
    return "\n".join(lines)
