"""The notifier's tables. They live in the same database (and schema) as the recalculator's,
each name prefixed `notifier_`, with their own Alembic version table."""

from __future__ import annotations

from backorders_platform import consumer_store
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from ..domain.rules import SCENARIO

metadata = MetaData()

# The notifier's projection of orders (customer data, order date, line names), from the
# order events; `last_change` is the last BackorderChanged seen for the order (previews).
orders = Table(
    "notifier_orders",
    metadata,
    Column("order_id", String, primary_key=True),
    Column("known", Boolean, nullable=False),
    Column("company_id", String),
    Column("parent_order_id", String),
    Column("customer", Text),  # JSON
    Column("order_date", String),
    Column("lines", Text, nullable=False),  # JSON {line_id: [sku, name]}
    Column("last_change", Text),  # JSON
    # µs business time of the OrderStatusChanged that completed, cancelled or voided the
    # order (None while it is open): a closed order is pruned after the retention window.
    Column("closed_at", BigInteger),
    # The expected day (YYYY-MM-DD) the order's last email gave, when it gave one: a later
    # one is a slip (docs/notifier.md, "Slip notices").
    Column("emailed_day", String),
    Index("ix_notifier_orders_parent", "parent_order_id"),
    Index("ix_notifier_orders_closed", "closed_at"),
)

# One row per change that calls for an email; the id derives from the BackorderChanged and
# the scenario (a backorder notice or a slip notice).
# status: pending (customer data not arrived), queued, sending, sent, failed, suppressed.
notifications = Table(
    "notifier_notifications",
    metadata,
    Column("notification_id", String, primary_key=True),
    Column("event_id", String, nullable=False, unique=True),  # the BackorderChanged id
    Column("scenario", String, nullable=False, server_default=SCENARIO),
    Column("order_id", String, nullable=False),
    Column("company_id", String, nullable=False),
    Column("template", String, nullable=False),
    Column("status", String, nullable=False),
    Column("event_time", BigInteger, nullable=False),  # µs since epoch, business time
    Column("change", Text, nullable=False),  # the BackorderChanged data, JSON
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Float),  # wall clock, seconds since epoch
    Column("claimed_by", String),
    Column("claimed_at", Float),
    Column("last_error", Text),
    Column("message_id", String),
    Column("recipient", String),
    Column("updated_at", Float),  # wall clock of the last status change
    Index("ix_notifier_notifications_status", "status", "next_attempt_at"),
    Index("ix_notifier_notifications_order", "order_id", "event_time"),
    Index("ix_notifier_notifications_done", "status", "event_time"),  # pruning
)

# How far each source has been consumed: an input log, the outbox (seq), a topic partition.
positions = Table(
    "notifier_positions",
    metadata,
    Column("source", String, primary_key=True),
    Column("position", BigInteger, nullable=False),
)

# Records that could not be taken in: what was read, where, and why (shaped as channel-sync's:
# backorders_platform.consumer_store).
dead_letters = consumer_store.dead_letter_table("notifier_dead_letters", metadata)

# Small facts: `clock`, the latest business time taken in (µs), and `horizon`, the business
# time before which notifications may have been pruned: a transition older than it is not
# recorded again (it would be a repeat of a pruned one, or older than the retention window).
meta = Table(
    "notifier_meta",
    metadata,
    Column("key", String, primary_key=True),
    Column("value", Text, nullable=False),
)
