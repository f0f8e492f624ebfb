"""Tables through which the stages of the sharded recalculator hand work to each other
(docs/sharding.md), in the pipeline's own schema. Every stage writes them in the transaction
that holds its own state, so a hand-over is never lost nor applied twice."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# One row per input event the router accepted, in routing order; deleted once assembled.
causes = Table(
    "causes",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("cause_id", String, nullable=False),
    Column("cause_type", String, nullable=False),
    Column("time", String, nullable=False),  # the event's time, RFC 3339
    Column("publish", Boolean, nullable=False),  # the workflow was enabled after it
)

# What the router sent each shard; a shard deletes the rows it applied when it commits them,
# so the rows left are exactly the work not yet done.
routed = Table(
    "routed",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("idx", Integer, primary_key=True, autoincrement=False),
    Column("shard", Integer, nullable=False),
    Column("cause_id", String, nullable=False),
    Column("payload", Text, nullable=False),
    Index("ix_routed_shard_seq", "shard", "seq", "idx"),
)

# A line or SKUs leaving one shard, waiting for the shard they move to.
handoffs = Table(
    "handoffs",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("key", String, primary_key=True),
    Column("payload", Text, nullable=False),
)

# A shard's lines of each order a cause touched, for the assembler.
partials = Table(
    "partials",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("shard", Integer, primary_key=True, autoincrement=False),
    Column("order_id", String, primary_key=True),
    Column("payload", Text, nullable=False),
)

# The router's state beyond its engine: which shards hold each order's header, and the
# replacement groups (their least SKU) ever formed.
order_shards = Table(
    "order_shards",
    metadata,
    Column("order_id", String, primary_key=True),
    Column("shards", String, nullable=False),  # "0,3"
)

sku_groups = Table(
    "sku_groups",
    metadata,
    Column("sku", String, primary_key=True),
    Column("root", String, nullable=False),
)

# The assembler's state: each order's lines per shard and what was last published for it.
assembled_orders = Table(
    "assembled_orders",
    metadata,
    Column("order_id", String, primary_key=True),
    Column("company_id", String, nullable=False),
    Column("status", String, nullable=False),
    Column("doc", Text, nullable=False),  # {"by_shard": {...}, "published": {...}}
)

# Live workers, for sharing the shards out; and small facts (shard count, sequences).
workers = Table(
    "workers",
    metadata,
    Column("worker_id", String, primary_key=True),
    Column("seen_at", BigInteger, nullable=False),  # µs, the database's clock
    Column("roles", String, nullable=False, default=""),  # "router" while it routes
)

pipeline_meta = Table(
    "pipeline_meta",
    metadata,
    Column("key", String, primary_key=True),
    Column("value", Text, nullable=False),
)

# The partitioned recalculator's records for its internal topics, in the schema of the task
# partition that produced them; `seq` is that task's sequence (docs/sharding.md).
internal_outbox = Table(
    "internal_outbox",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("topic", String, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("key", String, nullable=False),
    Column("time", String),  # the cause's time, RFC 3339
    Column("payload", LargeBinary, nullable=False),
)
