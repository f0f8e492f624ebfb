"""The notifier's own projection of customers per order, from the order events."""

from __future__ import annotations

from notifier.domain.facts import resolve
from notifier.domain.projection import apply
from notifier_events import order_created, order_split


def test_order_created_gives_the_customer_company_and_line_names():
    facts = {}
    assert apply(facts, order_created("o1", company="c9", email="ann@example.com")) == {"o1"}
    resolved = resolve("o1", facts)
    assert resolved.customer["email"] == "ann@example.com"
    assert resolved.company_id == "c9"
    assert resolved.line_names == {"1": "Cat Hammock"}
    assert resolved.order_date == "2025-04-30T10:00:00Z"


def test_the_first_order_created_wins_as_in_the_recalculator():
    facts = {}
    apply(facts, order_created("o1", email="first@example.com"))
    assert apply(facts, order_created("o1", email="second@example.com")) == set()
    assert resolve("o1", facts).customer["email"] == "first@example.com"


def test_a_split_order_takes_the_original_customer():
    facts = {}
    apply(facts, order_created("o1", email="ann@example.com", lines=(("1", "A", 3, "Apple"), ("2", "B", 1, "Box"))))
    apply(facts, order_split("o1", "o1-S1", lines=(("1", 1, "9"),)))
    resolved = resolve("o1-S1", facts)
    assert resolved.customer["email"] == "ann@example.com"
    assert resolved.line_names == {"9": "Apple"}


def test_a_split_seen_before_the_original_resolves_once_the_original_arrives():
    facts = {}
    apply(facts, order_split("o1", "o1-S1"))
    assert resolve("o1-S1", facts) is None
    apply(facts, order_created("o1", company="c2", email="late@example.com"))
    resolved = resolve("o1-S1", facts)
    assert resolved.customer["email"] == "late@example.com" and resolved.company_id == "c2"


def test_an_unknown_order_does_not_resolve():
    assert resolve("nope", {}) is None
