"""The order search over indexes: by status in order-date order (every column a page shows
in the index), by order date, by company, and the SKUs each order has a line of (filled
from the orders' documents, whose lines are arrays with the SKU second: adapters/codec.py).

Building the indexes reads every order once; on PostgreSQL the tables are locked against
writes meanwhile (seconds for a few hundred thousand orders).

Revision ID: 0008_order_search
Revises: 0007_incoming
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_order_search"
down_revision = "0007_incoming"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_orders_status_date": ["backorder_status", "order_date", "order_id", "company_id", "backorder_qty", "qty"],
    "ix_orders_date": ["order_date", "order_id"],
    "ix_orders_company": ["company_id", "order_date", "order_id"],
}


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    # A database made before migrations were used was adopted as 0001 and may already hold
    # every table and index of the code it was made with.
    existing = {index["name"] for index in inspector.get_indexes("orders")}
    for name, columns in INDEXES.items():
        if name not in existing:
            op.create_index(name, "orders", columns)
    if inspector.has_table("order_skus"):
        return
    op.create_table(
        "order_skus",
        sa.Column("sku", sa.String(), nullable=False),
        sa.Column("order_id", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("sku", "order_id"),
    )
    op.create_index("ix_order_skus_order_id", "order_skus", ["order_id"])
    if bind.dialect.name == "postgresql":
        lines = ("SELECT DISTINCT line ->> 1, o.order_id FROM orders o, "
                 "jsonb_array_elements(CAST(o.doc AS jsonb) -> 'lines') AS line")
    else:
        lines = ("SELECT DISTINCT json_extract(line.value, '$[1]'), o.order_id FROM orders o, "
                 "json_each(o.doc, '$.lines') AS line")
    op.execute(f"INSERT INTO order_skus (sku, order_id) {lines}")


def downgrade() -> None:
    op.drop_table("order_skus")
    for name in INDEXES:
        op.drop_index(name, table_name="orders")
