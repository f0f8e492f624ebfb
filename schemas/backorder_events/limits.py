"""The contract's limits: every bound an input must keep, in one place.

Each limit and why it is what it is: docs/behaviour.md, "Limits". The models of this package
(and through them `parse_event`, so every runtime and every consumer) apply them; an input
beyond one is refused with a reason naming the field and the limit. Nothing here is a rule
of the business: they keep every value storable (64-bit columns, PostgreSQL text), exact in
JSON (every quantity stays below 2**53, the largest integer a JavaScript reader holds
exactly) and every message small enough for Kafka's default 1 MB record size.
"""

from __future__ import annotations

from datetime import UTC, datetime

# The whole message, in bytes, checked on the raw input before any JSON parsing.
MAX_EVENT_BYTES = 1_048_576  # 1 MiB

# Lengths, in characters.
MAX_ID_LENGTH = 200  # event id, cause id; order, line, PO, warehouse, company, container ids
MAX_SKU_LENGTH = 200  # sku, new_sku, replacement_sku and the SKUs of commands
MAX_TEXT_LENGTH = 1_000  # names, customer and address fields, channel, source, subject

# Quantities.
MAX_LINE_QTY = 1_000_000_000  # a line's qty, split qty, backorder; PO and container lines
MAX_STOCK_QTY = 1_000_000_000_000  # |delta|, |set_to|, and any warehouse's stock level
MAX_SKU_STOCK = 1_000_000_000_000_000  # a SKU's positive stock summed over its warehouses
MAX_UNIT_PRICE = 1_000_000_000  # |unit_price|, finite

# Counts.
MAX_ORDER_LINES = 1_000  # lines of an order, of a split, of a reallocation
MAX_DOCUMENT_LINES = 10_000  # lines of a PO receipt, a purchase order, a container
MAX_COMMAND_ITEMS = 10_000  # order ids, SKUs named by one command

# Settings.
MAX_DAYS_TO_BE_BACK = 36_500  # a century; null turns the setting off

# Timestamps, after conversion to UTC: EARLIEST_TIME <= t < LATEST_TIME.
EARLIEST_TIME = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2200, 1, 1, tzinfo=UTC)

# Dead letters (made by the service, not sent to it): how much of a refused input is stored
# (the rest stays at its source, file line or topic offset), and of the other text fields.
MAX_DEAD_LETTER_RAW_BYTES = 65_536  # 64 KiB of the input; the original size is noted
MAX_DEAD_LETTER_TEXT = 4_096  # reason and source, in characters

# NUL (U+0000) is refused anywhere in a message: PostgreSQL text cannot hold it.
NUL = "\x00"
NO_NUL_PATTERN = "^[^\\u0000]*$"  # the same, in JSON Schema (ECMA-262) syntax

__all__ = [
    "EARLIEST_TIME",
    "LATEST_TIME",
    "MAX_COMMAND_ITEMS",
    "MAX_DAYS_TO_BE_BACK",
    "MAX_DEAD_LETTER_RAW_BYTES",
    "MAX_DEAD_LETTER_TEXT",
    "MAX_DOCUMENT_LINES",
    "MAX_EVENT_BYTES",
    "MAX_ID_LENGTH",
    "MAX_LINE_QTY",
    "MAX_ORDER_LINES",
    "MAX_SKU_LENGTH",
    "MAX_SKU_STOCK",
    "MAX_STOCK_QTY",
    "MAX_TEXT_LENGTH",
    "MAX_UNIT_PRICE",
    "NO_NUL_PATTERN",
    "NUL",
]
