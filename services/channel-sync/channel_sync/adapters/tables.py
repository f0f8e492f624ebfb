"""Channel-sync's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL."""

from __future__ import annotations

from backorders_platform import consumer_store
from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

# The numbering of appended rows (failures): 64-bit, BIGSERIAL on PostgreSQL. On SQLite only
# a column of type INTEGER exactly is the rowid and numbers itself, and it is 64-bit already.
SEQUENCE = BigInteger().with_variant(Integer(), "sqlite")

# The projection: purchase orders and containers as one JSON document each (their lines).
purchase_orders = Table(
    "channel_sync_purchase_orders",
    metadata,
    Column("po_id", String, primary_key=True),
    Column("lines", Text, nullable=False),  # [[sku, qty_ordered, qty_received, eta|null], ...]
    Column("updated_at", String),  # ISO time of the PurchaseOrderUpdated held
)

containers = Table(
    "channel_sync_containers",
    metadata,
    Column("container_id", String, primary_key=True),
    Column("eta", String),  # ISO date
    Column("lines", Text, nullable=False),  # {sku: qty on the way}
    Column("updated_at", String),  # ISO time of the ContainerUpdated held
)

products = Table(
    "channel_sync_products",
    metadata,
    Column("sku", String, primary_key=True),
    Column("name", String),
)

positions = Table(
    "channel_sync_positions",
    metadata,
    Column("sku", String, primary_key=True),
    Column("available_qty", BigInteger, nullable=False),
    Column("backorder_qty", BigInteger, nullable=False),
)

# The two client settings that shape the feeds, and other small facts: `owner`, the token
# of the process whose batches may be committed (see `Store.claim`); `clock`, the latest
# business time taken in, and `horizon`, the time before which closed supply was pruned.
meta = Table(
    "channel_sync_meta",
    metadata,
    Column("key", String, primary_key=True),
    Column("value", Text, nullable=False),
)

# POReceived events taken in (a receipt adds up once), with their PO, time and lines, so a
# newer update of the PO gets the receipts later than itself applied again.
receipts = Table(
    "channel_sync_receipts",
    metadata,
    Column("event_id", String, primary_key=True),
    Column("po_id", String),
    Column("at", String),  # ISO time
    Column("lines", Text),  # [[sku, qty], ...]
)

# How far each source has been consumed: input file line, outbox seq, topic:partition offset.
sources = Table(
    "channel_sync_sources",
    metadata,
    Column("source", String, primary_key=True),
    Column("position", BigInteger, nullable=False),
)

# SKUs whose row for a channel may have changed since it was last looked at. `version`
# grows each time the SKU is touched, so a push only clears what it saw.
pending = Table(
    "channel_sync_pending",
    metadata,
    Column("channel", String, primary_key=True),
    Column("sku", String, primary_key=True),
    Column("version", BigInteger, nullable=False),
)

# The last row each channel accepted, per SKU: what the next row is compared to.
accepted = Table(
    "channel_sync_accepted",
    metadata,
    Column("channel", String, primary_key=True),
    Column("sku", String, primary_key=True),
    Column("row", Text, nullable=False),
    Column("batch", Integer, nullable=False),
    Column("accepted_at", String, nullable=False),
)

# Rows a channel refused (4xx) or that could not be delivered after every retry.
failures = Table(
    "channel_sync_failures",
    metadata,
    Column("seq", SEQUENCE, primary_key=True, autoincrement=True),
    Column("channel", String, nullable=False),
    Column("sku", String, nullable=False),
    Column("kind", String, nullable=False),  # rejected | gave_up
    Column("status", Integer),
    Column("body", Text, nullable=False),
    Column("row", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("batch", Integer, nullable=False),
    Column("failed_at", String, nullable=False),
    Column("resolved", Boolean, nullable=False),  # a later row for the SKU was accepted
    Index("ix_channel_sync_failures_open", "channel", "resolved"),
    Index("ix_channel_sync_failures_sku", "channel", "sku", "seq"),  # the latest per SKU; pruning
)

# Per channel: where its rows go, the fingerprint of its row-shaping configuration, and its
# batch counter.
channels = Table(
    "channel_sync_channels",
    metadata,
    Column("channel", String, primary_key=True),
    Column("destination", String, nullable=False),
    Column("fingerprint", String, nullable=False),
    Column("batches", Integer, nullable=False),
)

# Records that could not be taken in: what was read, where, and why (shaped as the notifier's:
# backorders_platform.consumer_store).
dead_letters = consumer_store.dead_letter_table("channel_sync_dead_letters", metadata)
