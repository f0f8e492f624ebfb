"""schemas/asyncapi.json is what the models and the topic settings say, and holds together."""

from __future__ import annotations

import json
import re

from backorder_events import asyncapi


def test_committed_document_matches_the_models():
    assert asyncapi.main(["--check"]) == 0, "schemas/asyncapi.json is out of date: run `make schemas`"


def test_every_reference_resolves_and_every_event_type_has_a_channel():
    document = json.loads(asyncapi.render())
    text = json.dumps(document)
    for ref in set(re.findall(r'"\$ref": "#/([^"]+)"', text)):
        node = document
        for part in ref.split("/"):
            assert part in node, f"unresolved reference #/{ref}"
            node = node[part]
    carried = {ref.rsplit("/", 1)[1] for channel in document["channels"].values()
               for ref in (m["$ref"] for m in channel["messages"].values())}
    assert carried == set(document["components"]["messages"])
    assert document["channels"]["orders"]["address"] == "backorders.orders"
    assert document["components"]["messages"]["BackorderChanged"]["bindings"]["kafka"]["key"]["description"] == "order_id"
