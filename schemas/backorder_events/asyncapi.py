"""The AsyncAPI 3.0 document of the service's topics, generated from the event models and
the default topic settings: `python -m backorder_events.asyncapi` writes
`schemas/asyncapi.json` (`--check` compares instead; a test does the same)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic.json_schema import models_json_schema

from . import INPUT_EVENT_TYPES, OUTPUT_EVENT_TYPES, DeadLetter
from .topics import INVENTORY_TYPES, ORDER_TYPES, REFERENCE_TYPES, InputTopics, OutputTopics

TARGET = Path(__file__).resolve().parents[1] / "asyncapi.json"

KEYS = {
    **{name: "order_id" for name in ORDER_TYPES},
    **{name: "sku (po_id or container_id when several SKUs)" for name in INVENTORY_TYPES},
    "WarehouseUpserted": "warehouse_id",
    "ProductUpserted": "sku",
    "SettingsChanged": "the string 'settings'",
    "RecalculateBackorders": "none",
    "ReallocateBackorder": "order_id",
    "MarkBackorder": "none",
    "MarkNotBackorder": "none",
    "BackorderChanged": "order_id",
    "ProductBackorderChanged": "sku",
    "SkuPositionChanged": "sku",
    "DeadLetter": "none",
}


def document() -> dict:
    inputs, outputs = InputTopics(), OutputTopics()
    models = {**INPUT_EVENT_TYPES, **OUTPUT_EVENT_TYPES, "DeadLetter": DeadLetter}
    _, definitions = models_json_schema(
        [(model, "validation") for model in models.values()],
        ref_template="#/components/schemas/{model}",
    )
    messages = {
        name: {
            "name": name,
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
            "bindings": {"kafka": {"key": {"type": "string", "description": KEYS[name]}}},
        }
        for name, model in models.items()
    }
    command_types = [n for n in INPUT_EVENT_TYPES if n not in ORDER_TYPES | INVENTORY_TYPES | REFERENCE_TYPES]
    channels = {
        "orders": (inputs.orders, sorted(ORDER_TYPES), "Order events from order management, keyed by order_id."),
        "inventory": (inputs.inventory, sorted(INVENTORY_TYPES), "Stock and purchasing, keyed by SKU."),
        "reference": (inputs.reference, sorted(REFERENCE_TYPES), "Warehouses, products and client settings."),
        "commands": (inputs.commands, sorted(command_types), "The seed's Manage Orders actions and the periodic run."),
        "backorderChanged": (outputs.backorder_changed, ["BackorderChanged"], "An order's published backorders changed."),
        "productBackorderChanged": (outputs.product_backorder_changed, ["ProductBackorderChanged"],
                                    "A SKU's total published backorder changed."),
        "skuPositionChanged": (outputs.sku_position_changed, ["SkuPositionChanged"],
                               "A SKU's available or backordered quantity changed (channel feeds)."),
        "deadLetters": (outputs.dead_letters, ["DeadLetter"], "Refused inputs with the reason and where they came from."),
    }
    outgoing = {"backorderChanged", "productBackorderChanged", "skuPositionChanged", "deadLetters"}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "backorders",
            "version": "1.0.0",
            "description": "CloudEvents 1.0 (structured JSON) in and out of the backorder service. "
            "Topic names are the defaults; BACKORDERS_TOPIC_* renames them.",
        },
        "defaultContentType": "application/json",
        "channels": {
            key: {
                "address": address,
                "description": description,
                "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in names},
            }
            for key, (address, names, description) in channels.items()
        },
        "operations": {
            f"{'send' if key in outgoing else 'receive'}{key[0].upper()}{key[1:]}": {
                "action": "send" if key in outgoing else "receive",
                "channel": {"$ref": f"#/channels/{key}"},
            }
            for key in channels
        },
        "components": {"messages": messages, "schemas": definitions["$defs"]},
    }


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is out of date: run `make schemas`", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
