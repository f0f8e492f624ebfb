"""schemas/asyncapi.json is what the models and the topic settings say, and holds together."""

from __future__ import annotations

import json

from backorder_events import asyncapi
from support import assert_references_resolve


def test_committed_document_matches_the_models():
    assert asyncapi.main(["--check"]) == 0, "schemas/asyncapi.json is out of date: run `make schemas`"


def test_every_reference_resolves_and_every_event_type_has_a_channel():
    document = json.loads(asyncapi.render())
    assert_references_resolve(document)
    carried = {ref.rsplit("/", 1)[1] for channel in document["channels"].values()
               for ref in (m["$ref"] for m in channel["messages"].values())}
    assert carried == set(document["components"]["messages"])
    assert document["channels"]["orders"]["address"] == "backorders.orders"
    assert document["components"]["messages"]["BackorderChanged"]["bindings"]["kafka"]["key"]["description"] == "order_id"
