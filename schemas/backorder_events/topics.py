"""The topics of the contract: where upstream systems publish each input event and with
which key, and where the recalculator publishes its outputs (names from the environment,
`BACKORDERS_TOPIC_<NAME>`; the keys are documented in the README and the AsyncAPI document).
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class OutputTopics(BaseSettings):
    """Where published events go, and their keys (documented in the README)."""

    model_config = SettingsConfigDict(env_prefix="BACKORDERS_TOPIC_")

    backorder_changed: str = "backorders.backorder-changed"  # keyed by order_id
    product_backorder_changed: str = "backorders.product-backorder-changed"  # keyed by sku
    sku_position_changed: str = "backorders.sku-position-changed"  # keyed by sku
    dead_letters: str = "backorders.dead-letters"

    def for_type(self, event_type: str) -> str:
        if event_type == "BackorderChanged":
            return self.backorder_changed
        if event_type == "ProductBackorderChanged":
            return self.product_backorder_changed
        if event_type == "SkuPositionChanged":
            return self.sku_position_changed
        raise ValueError(f"no output topic for {event_type!r}")


ORDER_TYPES = frozenset({"OrderCreated", "OrderSplit", "ItemAdded", "ItemReplaced", "OrderStatusChanged"})
INVENTORY_TYPES = frozenset({"POReceived", "InventoryAdjusted", "PurchaseOrderUpdated", "ContainerUpdated"})
REFERENCE_TYPES = frozenset({"WarehouseUpserted", "ProductUpserted", "SettingsChanged"})
ORDER_COMMAND_TYPES = frozenset({"ReallocateBackorder", "MarkBackorder", "MarkNotBackorder"})

# The key of everything on the commands topic: one partition keeps the commands in the order
# they were published, and a file replay can tell where each would have been.
COMMANDS_KEY = "commands"


class InputTopics(BaseSettings):
    """Where upstream systems publish, and the key each event type is sent with."""

    model_config = SettingsConfigDict(env_prefix="BACKORDERS_TOPIC_")

    orders: str = "backorders.orders"  # order events, keyed by order_id
    inventory: str = "backorders.inventory"  # stock and purchasing, keyed by sku (or PO/container)
    reference: str = "backorders.reference"  # warehouses, products, settings
    commands: str = "backorders.commands"  # recalculations, and actions on several orders

    def all(self) -> list[str]:
        return [self.orders, self.inventory, self.reference, self.commands]

    def route(self, event: object) -> tuple[str, str | None]:
        """(topic, key) for a raw event; what cannot be read goes to the commands topic,
        where the worker dead-letters it."""
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
            return self.commands, COMMANDS_KEY
        kind, data = event.get("type"), event["data"]
        if kind in ORDER_TYPES:
            return self.orders, _text(data.get("order_id"))
        if kind in INVENTORY_TYPES:
            lines = data.get("lines") if isinstance(data.get("lines"), list) else []
            skus = {line.get("sku") for line in lines if isinstance(line, dict)}
            if data.get("sku") is not None:
                return self.inventory, _text(data["sku"])
            if len(skus) == 1:
                return self.inventory, _text(skus.pop())
            return self.inventory, _text(data.get("po_id") or data.get("container_id"))
        if kind in REFERENCE_TYPES:
            return self.reference, _text(data.get("warehouse_id") or data.get("sku") or "settings")
        order_id = _single_order(data) if kind in ORDER_COMMAND_TYPES else None
        if order_id is not None:
            # A manual action on one order travels behind that order's events (same topic,
            # same key, so same partition): on a topic of its own it could overtake the
            # OrderCreated it refers to and be refused as naming an unknown order.
            return self.orders, order_id
        return self.commands, COMMANDS_KEY


def _single_order(data: dict) -> str | None:
    if data.get("order_id") is not None:
        return _text(data["order_id"])
    ids = data.get("order_ids")
    if isinstance(ids, list) and len(ids) == 1 and ids[0] is not None:
        return _text(ids[0])
    return None


def _text(value) -> str | None:
    return None if value is None else str(value)
