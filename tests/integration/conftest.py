"""The same integration suite against each backend: SQLite (the embedded default) and
PostgreSQL (asyncpg), each test in a fresh database or schema."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from typing import NamedTuple

import pytest
from backorders_platform.database import sqlite_url
from backorders_platform.migrations import drop_schema
from backorders_workload import WorkloadShape, generate_day
from recalculator.domain.engine import Engine
from recalculator.processing import process
from recalculator.publishing import to_json
from recalculator.runtime.sequencing import in_log_order


class Database(NamedTuple):
    url: str
    schema: str | None


def kafka_bootstrap() -> str:
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not servers:
        pytest.fail("KAFKA_BOOTSTRAP_SERVERS is not set: run the integration tests through `make test`")
    return servers


async def consume_all(servers: str, topics: list[str], expected: int, timeout_ms: int = 20000) -> list:
    """Every record of `topics` from the beginning, until `expected` arrived or none comes."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=servers, auto_offset_reset="earliest", enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    received = []
    try:
        while len(received) < expected:
            batch = await consumer.getmany(timeout_ms=timeout_ms)
            if not batch:
                break
            for records in batch.values():
                received.extend(records)
    finally:
        await consumer.stop()
    return received


def postgres_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        pytest.fail("DATABASE_URL is not set: run the integration tests through `make test`")
    return url


_drop_schema = drop_schema


def day_and_expected(seed: int, shape: WorkloadShape):
    """A generated day as raw lines, a final full recalculation after it, and the engine that
    `replay` of the lines and that recalculation leaves."""
    events = generate_day(seed, shape)
    lines = [(e["__raw__"] if "__raw__" in e else to_json(e)).encode() for e in events]
    final = to_json({"specversion": "1.0", "id": "final-recalc", "source": "/ops",
                     "type": "RecalculateBackorders", "time": json.loads(lines[-1])["time"],
                     "data": {}}).encode()
    expected = Engine()
    for item in in_log_order(enumerate([*lines, final], 1)):
        process(expected, item.raw, "log", item.line, parsed=item.parsed)
    return lines, final, expected


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        yield Database(sqlite_url(tmp_path / "state.sqlite"), None)
        return
    url = postgres_url()
    schema = f"test_{uuid.uuid4().hex[:12]}"
    yield Database(url, schema)
    asyncio.run(_drop_schema(url, schema))
