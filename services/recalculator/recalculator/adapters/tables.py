"""The recalculator's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

metadata = MetaData()

# The numbering of appended rows (outbox, dead letters): 64-bit, BIGSERIAL on PostgreSQL. On
# SQLite only a column of type INTEGER exactly is the rowid and numbers itself, and the
# rowid is 64-bit already.
SEQUENCE = BigInteger().with_variant(Integer(), "sqlite")

# One row per order: searchable columns, and the whole order (lines, published values) as
# JSON in `doc`, from which the engine is rebuilt on start.
orders = Table(
    "orders",
    metadata,
    Column("order_id", String, primary_key=True),
    Column("company_id", String, nullable=False),
    Column("order_date", BigInteger, nullable=False),  # µs since epoch
    Column("backorder_status", String, nullable=False),
    # Sums over up to 1,000 lines of up to 10**9 units (the contract's limits): 64 bits.
    Column("backorder_qty", BigInteger, nullable=False),
    Column("qty", BigInteger, nullable=False),
    Column("doc", Text, nullable=False),
    # Business time (µs) of the event that closed it (Completed, Cancelled, Void), else null.
    Column("closed_at", BigInteger),
    Index("ix_orders_backorder_status", "backorder_status"),
    # The searches (adapters/search.py): by status in order-date order, holding every column
    # a page shows (a page is read from the index alone); by order date; by company.
    Index("ix_orders_status_date", "backorder_status", "order_date", "order_id", "company_id",
          "backorder_qty", "qty"),
    Index("ix_orders_date", "order_date", "order_id"),
    Index("ix_orders_company", "company_id", "order_date", "order_id"),
)

# The SKUs each order has a line of (the order search's `sku` filter), written with the
# order in the same transaction.
order_skus = Table(
    "order_skus",
    metadata,
    Column("sku", String, primary_key=True),
    Column("order_id", String, primary_key=True),
    Index("ix_order_skus_order_id", "order_id"),
)

stock = Table(
    "stock",
    metadata,
    Column("sku", String, primary_key=True),
    Column("warehouse_id", String, primary_key=True),
    Column("qty", BigInteger, nullable=False),
)

# Supply on its way to each SKU (domain/incoming.py) as JSON: its open purchase-order lines
# and containers.
incoming = Table(
    "incoming",
    metadata,
    Column("sku", String, primary_key=True),
    Column("doc", Text, nullable=False),
)

warehouses = Table(
    "warehouses",
    metadata,
    Column("warehouse_id", String, primary_key=True),
    Column("type", String, nullable=False),
    Column("name", String),
)

products = Table(
    "products",
    metadata,
    Column("sku", String, primary_key=True),
    Column("replacement_sku", String),
    Column("name", String),
)

# Total published backorder quantity per SKU (the seed's product search).
sku_backorders = Table(
    "sku_backorders",
    metadata,
    Column("sku", String, primary_key=True),
    Column("backorder_qty", BigInteger, nullable=False),
    Index("ix_sku_backorders_qty", "backorder_qty"),
)

# The position last published per SKU (SkuPositionChanged): what the next one is compared to.
sku_positions = Table(
    "sku_positions",
    metadata,
    Column("sku", String, primary_key=True),
    Column("available_qty", BigInteger, nullable=False),
    Column("backorder_qty", BigInteger, nullable=False),
)

settings = Table(
    "settings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("doc", Text, nullable=False),
)

# Applied events by their CloudEvents identity (source and id), written in the transaction
# that applied them, with the business time they were applied at; deleted once older than
# the dedupe window. Source "" holds ids stored before sources were kept: they match an
# event of any source.
processed_events = Table(
    "processed_events",
    metadata,
    Column("source", String, primary_key=True),
    Column("event_id", String, primary_key=True),
    Column("applied_at", BigInteger, nullable=False),  # µs, the business clock
    Index("ix_processed_events_applied_at", "applied_at"),
)

# Small facts about the state itself (the business time of the last applied event).
meta = Table(
    "meta",
    metadata,
    Column("key", String, primary_key=True),
    Column("value", Text, nullable=False),
)

# How far each named input source has been consumed (place in a log, or topic partition
# offset), and for a partition the effective time its records had reached (ordering.py).
positions = Table(
    "positions",
    metadata,
    Column("source", String, primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("stream_time", BigInteger),  # µs
)

# Published events, in the order they were decided; relayed to consumers from here.
outbox = Table(
    "outbox",
    metadata,
    Column("seq", SEQUENCE, primary_key=True, autoincrement=True),
    Column("event_id", String, nullable=False, unique=True),
    Column("event_type", String, nullable=False),
    Column("subject", String, nullable=False),
    Column("payload", Text, nullable=False),
    # The business clock (µs) of the batch that wrote it: relayed rows older than the
    # outbox retention are pruned.
    Column("recorded_at", BigInteger),
    Index("ix_outbox_recorded_at", "recorded_at"),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("seq", SEQUENCE, primary_key=True, autoincrement=True),
    Column("source", String, nullable=False),
    Column("position", BigInteger),
    Column("partition", Integer),
    Column("event_id", String),
    Column("event_type", String),
    Column("reason", Text, nullable=False),
    Column("raw", Text, nullable=False),
    # raw is backslash-escaped (the input held NUL or bytes that are not UTF-8), and cut to
    # its first bytes when raw_size (the input's whole size) is set: see DeadLetter.
    Column("raw_escaped", Boolean, nullable=False, server_default=false()),
    Column("raw_size", BigInteger),
    Column("recorded_at", BigInteger),  # as in the outbox
    Index("ix_dead_letters_recorded_at", "recorded_at"),
)
