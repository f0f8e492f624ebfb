"""The partitioned recalculator's stages on `PartitionedRunner` (docs/sharding.md, "The
recalculator on consumer groups"). Built so far: the assembly stage.

Every task partition keeps its state in a schema of its own (`<base>_<stage><partition>`,
with the usual tables), reached in the runner's batch transaction by a `SET LOCAL
search_path` to that schema then the base schema (where the runner's `partition_owners`
lives): the partition's state, its protocol state (JSON in `meta`), its outbox and the
highest sequence applied from each upstream task (in `positions`, as `applied:<source>`)
are written in the transaction that stores the partition's position.

Internal records carry their producer and its sequence in headers (`source`, `seq`); a
record whose sequence is at or below what the partition stored for its source is one a
relay sent again, and is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import TopicPartition
from backorders_platform import schema_names
from backorders_platform.database import make_engine, upsert
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from ..adapters import pipeline_tables as pt
from ..adapters import tables as t
from ..adapters.migrate import PIPELINE
from ..adapters.partitioned_codec import assembly_state, decode_partial_message, load_assembly_state
from ..adapters.repository import BatchRows, Repository, _chunks, outbox_row
from ..domain.partitioned import AssemblyTask
from ..publishing import order_event, output_id, rfc3339
from .sharded import assembled_order, assembled_row, migrate_stage

SOURCE_HEADER, SEQ_HEADER, TIME_HEADER = "source", "seq", "time"
APPLIED = "applied:"  # positions of upstream tasks: `applied:<source>` → its last sequence


def task_schema(base: str, stage: str, partition: int) -> str:
    return schema_names.checked(f"{base}_{stage}{partition}")


async def migrate_task_schemas(url: str, base: str, stage: str, partitions: int) -> None:
    """Every partition's schema of a stage, before any runner claims a partition."""
    for partition in range(partitions):
        schema = task_schema(base, stage, partition)
        await migrate_stage(url, schema)
        db = make_engine(url, schema)
        try:
            await PIPELINE.upgrade(db, schema)  # assembled_orders
        finally:
            await db.dispose()


async def use_schema(conn: AsyncConnection, schema: str, base: str) -> None:
    """The partition's tables first, then the runner's, for the rest of the transaction."""
    path = ", ".join(schema_names.quoted(name) for name in (schema, base))
    await conn.execute(text(f"SET LOCAL search_path TO {path}"))


def headers_of(record) -> dict[str, str]:
    return {name: value.decode() for name, value in (record.headers or ())}


async def applied_sequences(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(select(t.positions.c.source, t.positions.c.position)
                              .where(t.positions.c.source.startswith(APPLIED)))
    return {row.source[len(APPLIED):]: row.position for row in rows}


def applied_rows(applied: dict[str, int]) -> list[dict]:
    return [{"source": APPLIED + source, "position": seq, "stream_time": None}
            for source, seq in sorted(applied.items())]


def publication_id(key: tuple) -> str | None:
    """A part published alone (key (cause, order, allocation partition)) takes the partition
    into its id: the same cause may reach the order from several partitions. None: the
    engine's id, from (cause, order)."""
    if len(key) == 3:
        cause_id, order_id, partition = key
        return output_id("BackorderChanged/part", cause_id, f"{partition}\x1f{order_id}")
    return None


@dataclass(slots=True)
class AssemblyPartition:
    schema: str
    task: AssemblyTask
    applied: dict[str, int] = field(default_factory=dict)


class AssemblyStage:
    """Assembly tasks over the partitions of the partials topic (key: order id). Records
    carry a `PartialMessage` and, in headers, their allocation task, its sequence and the
    cause's time (RFC 3339) for the BackorderChanged they lead to."""

    name = "assembly"

    def __init__(self, base: str) -> None:
        self.base = base
        self.applied = 0
        self.skipped = 0

    async def load(self, partition: TopicPartition, conn: AsyncConnection) -> AssemblyPartition:
        schema = task_schema(self.base, self.name, partition.partition)
        await use_schema(conn, schema, self.base)
        task = AssemblyTask()
        async for row in await conn.stream(select(pt.assembled_orders)):
            task.assembler.orders[row.order_id] = assembled_order(row)
        stored = (await conn.execute(select(t.meta.c.value).where(t.meta.c.key == self.name))).scalar()
        if stored:
            load_assembly_state(task, stored)
        return AssemblyPartition(schema, task, await applied_sequences(conn))

    async def apply(self, partition: TopicPartition, state: AssemblyPartition, records: list,
                    conn: AsyncConnection) -> None:
        await use_schema(conn, state.schema, self.base)
        task, applied = state.task, state.applied
        outputs, touched = [], set()
        for record in records:
            headers = headers_of(record)
            source, seq = headers[SOURCE_HEADER], int(headers[SEQ_HEADER])
            if seq <= applied.get(source, -1):
                self.skipped += 1
                continue
            applied[source] = seq
            message = decode_partial_message(record.value)
            touched.add(message.partial.order_id)
            for key, change in task.receive(message):
                event = order_event(change, headers[TIME_HEADER])
                event["id"] = publication_id(key) or event["id"]
                outputs.append(event)
            self.applied += 1
        orders = task.assembler.orders
        forgotten = sorted(order_id for order_id in touched if order_id not in orders)
        saved = [assembled_row(order_id, orders[order_id]) for order_id in sorted(touched - set(forgotten))]
        rows = BatchRows(outbox=[outbox_row(event) for event in outputs],
                         meta=[{"key": self.name, "value": assembly_state(task)}],
                         positions=applied_rows(applied))

        async def assembled(conn) -> None:
            await upsert(conn, pt.assembled_orders, saved, ["order_id"])
            for chunk in _chunks(forgotten):
                await conn.execute(delete(pt.assembled_orders).where(pt.assembled_orders.c.order_id.in_(chunk)))

        rows.extra.append(assembled)
        await Repository(None).write_rows(conn, rows)

    def drop(self, partition: TopicPartition, state: AssemblyPartition) -> None:
        pass


def stamp(moment_us: int) -> str:
    """A cause's time (µs) as the `time` header."""
    return rfc3339(datetime.fromtimestamp(moment_us / 1_000_000, tz=UTC))
