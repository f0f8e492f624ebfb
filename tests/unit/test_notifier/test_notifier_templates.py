"""Templates: the seed's `#?Name?#` placeholders, checked when loaded, rendered per message."""

from __future__ import annotations

import pytest
from notifier.domain.placeholders import PLACEHOLDERS, ItemLine, MessageFacts, values
from notifier.domain.templates import TemplateError, parse

FACTS = MessageFacts(
    order_id="5145827",
    company_name="Thirsty Tea",
    footer="Thirsty Tea\n1 Harbor Way",
    status="Full",
    customer={
        "email": "colin@example.com",
        "first_name": "Colin <b>",
        "last_name": "O'Hara & Sons",
        "shipping_address": {"name": "Colin Customerson", "street1": "1 <Main> St", "city": "Lakewood",
                             "state": "NJ", "postal_code": "08701", "country": "US"},
    },
    order_date="2023-08-16T13:30:00Z",
    items=(ItemLine("cat-hammock", "Cat <Hammock>", 2, 2), ItemLine("SC-Tees", None, 3, 1)),
)


def test_the_placeholders_the_issue_names_are_known():
    for name in ("FirstName", "LastName", "OrderItemsDetails", "OrderItemsDetails2", "ShippingAddress",
                 "ShippingAddressHtml", "FooterInfoCompany", "OrderID", "CompanyName"):
        assert name in PLACEHOLDERS


def test_an_unknown_placeholder_is_refused_with_the_template_name_and_the_line():
    body = "Dear #?FirstName?#,\n\nyour order #?OrderID?#\nfrom #?ComapnyName?# is late\n"
    with pytest.raises(TemplateError) as error:
        parse("late-order", "text", body)
    message = str(error.value)
    assert "'late-order'" in message and "plain-text body" in message
    assert "(line 4 of the text value)" in message
    assert "#?ComapnyName?#" in message and "did you mean #?CompanyName?#" in message


def test_the_line_is_counted_in_the_file_the_body_came_from():
    with pytest.raises(TemplateError, match=r"notice\.html line 2\): unknown placeholder #\?Nope\?#"):
        parse("n", "html", "<p>\n#?Nope?#</p>", origin="notice.html")


def test_an_unclosed_placeholder_is_refused():
    with pytest.raises(TemplateError, match=r"line 2 of the text value\): '#\?' without a closing"):
        parse("n", "text", "ok #?OrderID?#\n#?FirstName and more\n")
    with pytest.raises(TemplateError, match="malformed placeholder"):
        parse("n", "text", "#?First\nName?#")


def test_html_values_only_in_html_bodies_and_multi_line_values_not_in_subjects():
    with pytest.raises(TemplateError, match="use #\\?OrderItemsDetails2\\?# here"):
        parse("n", "text", "#?OrderItemsDetails?#")
    with pytest.raises(TemplateError, match="can only be used in the HTML body"):
        parse("n", "subject", "#?ShippingAddressHtml?#")
    with pytest.raises(TemplateError, match="cannot be used in the subject"):
        parse("n", "subject", "Order #?OrderID?# #?ShippingAddress?#")
    # Multi-line text values are fine in both bodies.
    parse("n", "html", "#?ShippingAddress?# #?OrderItemsDetails2?#")


def test_text_rendering_fills_values_as_they_are():
    text = parse("n", "text", "Dear #?FirstName?# #?LastName?#,\n#?OrderItemsDetails2?#\n#?ShippingAddress?#")
    rendered = text.render(values(FACTS))
    assert rendered.startswith("Dear Colin <b> O'Hara & Sons,\n")
    assert "- Cat <Hammock> (cat-hammock): 2 ordered, 2 backordered" in rendered
    assert "- SC-Tees: 3 ordered, 1 backordered" in rendered
    assert "1 <Main> St\nLakewood, NJ 08701\nUS" in rendered


def test_html_rendering_escapes_every_customer_supplied_value():
    body = parse("n", "html", "<p>#?FirstName?# #?LastName?#</p>#?OrderItemsDetails?#"
                              "<address>#?ShippingAddressHtml?#</address><p>#?FooterInfoCompany?#</p>")
    rendered = body.render(values(FACTS))
    assert "<p>Colin &lt;b&gt; O&#x27;Hara &amp; Sons</p>" in rendered
    assert "<td>Cat &lt;Hammock&gt;</td>" in rendered
    assert "1 &lt;Main&gt; St<br>" in rendered
    assert "<p>Thirsty Tea<br>\n1 Harbor Way</p>" in rendered  # line breaks kept in HTML
    assert "<b>" not in rendered  # the customer's markup is text
    # The table lists every line with its quantity and backorder quantity.
    assert rendered.count("<tr><td>") == 2
    assert '<td style="text-align:right">3</td><td style="text-align:right">1</td>' in rendered


def test_subject_and_literal_text_around_placeholders():
    subject = parse("n", "subject", "#?CompanyName?#: order #?OrderID?# (#?BackorderStatus?#)")
    assert subject.render(values(FACTS)) == "Thirsty Tea: order 5145827 (Full)"
    assert parse("n", "text", "no placeholders ?# at all").render({}) == "no placeholders ?# at all"


DATED = MessageFacts(
    order_id="5145827", company_name="Thirsty Tea", footer="", status="Partial",
    customer={"email": "colin@example.com"}, order_date="2023-08-16T13:30:00Z",
    items=(ItemLine("cat-hammock", "Cat Hammock", 2, 2, "2023-08-21"), ItemLine("SC-Tees", None, 3, 1),
           ItemLine("mug", "Mug", 1, 0)),
    expected_day="2023-08-21",
)


def test_each_backordered_line_shows_its_expected_date_or_unknown_and_a_line_in_stock_none():
    rendered = parse("n", "text", "#?OrderItemsDetails2?#").render(values(DATED))
    assert rendered.splitlines() == [
        "- Cat Hammock (cat-hammock): 2 ordered, 2 backordered, expected 2023-08-21",
        "- SC-Tees: 3 ordered, 1 backordered, expected date unknown",
        "- Mug (mug): 1 ordered, 0 backordered",
    ]
    table = parse("n", "html", "#?OrderItemsDetails?#").render(values(DATED))
    assert "<th>Backordered</th><th>Expected</th>" in table
    assert '<td style="text-align:right">2</td><td>2023-08-21</td></tr>' in table
    assert '<td style="text-align:right">1</td><td>unknown</td></tr>' in table
    assert '<td style="text-align:right">0</td><td></td></tr>' in table


def test_the_expected_date_placeholder_is_the_orders_and_may_go_into_the_subject():
    subject = parse("n", "subject", "Order #?OrderID?#: expected #?ExpectedDate?#")
    assert subject.render(values(DATED)) == "Order 5145827: expected 2023-08-21"
    assert subject.render(values(FACTS)) == "Order 5145827: expected unknown"
