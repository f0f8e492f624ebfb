"""services/recalculator/openapi.json is what the API's routes and models say."""

from __future__ import annotations

import json

from recalculator.api import openapi
from support import assert_references_resolve


def test_committed_document_matches_the_api():
    assert openapi.main(["--check"]) == 0, "services/recalculator/openapi.json is out of date: run `make schemas`"


def test_every_reference_resolves_and_every_route_is_described():
    document = json.loads(openapi.render())
    assert_references_resolve(document)
    assert set(document["paths"]) == {
        "/orders", "/orders/{order_id}", "/products", "/skus/{sku}", "/skus/{sku}/supply",
        "/actions/recalculate", "/actions/mark-backorder", "/actions/mark-not-backorder", "/actions/reallocate",
        "/operations/status", "/operations/outbox", "/dead-letters", "/dead-letters/{seq}", "/dead-letters/{seq}/raw",
        "/dead-letters/{seq}/resubmit", "/operations/notifier/failures", "/operations/notifier/resend",
        "/operations/channels/failures"}
    backorder = next(p for p in document["paths"]["/orders"]["get"]["parameters"] if p["name"] == "backorder")
    assert "not-full" in json.dumps(backorder["schema"])
