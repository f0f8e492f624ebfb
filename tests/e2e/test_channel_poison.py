"""Channel-sync's worker (`backorders worker channel-sync`) on the real broker and PostgreSQL,
fed poison between valid records on its three topics: a record that is not JSON, one that is
not UTF-8, a `time` the contract's parser overflows on, quantities of 2**70 and 10**30, a
NUL character in a SKU, a purchase order id and a product name, a 1,000,000-character SKU
and a message larger than the worker takes. Every valid position reaches the feed files,
every poison record is dead-lettered with its reason (as `backorders channels dead-letters`
shows it), the partitions keep flowing and the worker never exits."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import uuid

from backorders_platform.database import make_engine
from channel_support import position, product, purchase_order
from consumer_support import BACKORDERS, assert_dead_lettered, create_topics, listed_dead_letters, produce, stop
from integration.conftest import _drop_schema, kafka_bootstrap, postgres_url
from sqlalchemy import text


def _bytes(event: dict) -> bytes:
    return json.dumps(event).encode()


def poison(topics: dict[str, str]) -> list[tuple[str, bytes, bytes, str]]:
    """(topic, key, value, what its dead letter's reason says)."""
    positions, inventory, reference = topics["positions"], topics["inventory"], topics["reference"]
    return [
        (positions, b"P1", b'{"specversion": "1.0", "type": "SkuPositionChanged", "id": "poison-1"', "not JSON: "),
        (inventory, b"P2", b"\xff\xfe\x00 not text at all", "not UTF-8: "),
        (reference, b"P3", _bytes({**purchase_order("PO-P3", ("A-000", 5, 0, "2025-05-05")),
                                   "time": "0001-01-01T00:00:00+01:00"}),
         "time: must be at or after 1900-01-01T00:00:00Z and before 2200-01-01T00:00:00Z"),
        (positions, b"P4", _bytes(position("A-001", 2**70, 0)), "number out of range at data.available_qty"),
        (reference, b"P5", _bytes(purchase_order("PO-P5", ("A-002", 10**30, 0, "2025-05-05"))),
         "number out of range at data.lines[0].qty_ordered"),
        (positions, b"P6", _bytes(position("A-0\x0003", 1, 0)), "NUL character at data.sku"),
        (reference, b"P7", _bytes(purchase_order("PO\x00P7", ("A-004", 5, 0, "2025-05-05"))),
         "NUL character at data.po_id"),
        (reference, b"P8", _bytes(product("A-005", "Cat\x00Hammock")), "NUL character at data.name"),
        (positions, b"P9", _bytes(position("S" * 1_000_000, 1, 0)),
         "identifier too long (1,000,000 characters; at most 500) at data.sku"),
        (reference, b"P10", _bytes(product("A-006", "x" * 2_000_000)), "record too large: "),
    ]


async def _positions(url: str, schema: str) -> dict[str, tuple[int, int]]:
    db = make_engine(url, schema)
    try:
        async with db.connect() as conn:
            exists = (await conn.execute(text(
                "select count(*) from information_schema.tables where table_schema = :s "
                "and table_name = 'channel_sync_positions'"), {"s": schema})).scalar_one()
            if not exists:
                return {}
            rows = await conn.execute(text("select sku, available_qty, backorder_qty from channel_sync_positions"))
            return {sku: (available, backorder) for sku, available, backorder in rows}
    finally:
        await db.dispose()


def test_poison_records_are_dead_lettered_and_the_valid_ones_flow(tmp_path):
    servers, url = kafka_bootstrap(), postgres_url()
    suffix = uuid.uuid4().hex[:10]
    schema = f"chan_poison_{suffix}"
    topics = {"positions": f"cp.spc.{suffix}", "inventory": f"cp.inv.{suffix}", "reference": f"cp.ref.{suffix}"}
    asyncio.run(create_topics(servers, {topics["positions"]: 2, topics["inventory"]: 1, topics["reference"]: 1}))
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": servers,
           "BACKORDERS_TOPIC_INVENTORY": topics["inventory"], "BACKORDERS_TOPIC_REFERENCE": topics["reference"],
           "BACKORDERS_TOPIC_SKU_POSITION_CHANGED": topics["positions"],
           "CHANNEL_SYNC_DATABASE_URL": url, "CHANNEL_SYNC_SCHEMA": schema, "CHANNEL_SYNC_APP_ID": f"cs-poison-{suffix}",
           "CHANNEL_SYNC_BATCH_SIZE": "10", "CHANNEL_SYNC_PUSH_EVERY_SECONDS": "1",
           "CHANNEL_SYNC_SESSION_TIMEOUT_SECONDS": "6", "BACKORDERS_DATA_DIR": str(tmp_path)}
    env.pop("CHANNEL_SYNC_CONFIG", None)
    env.pop("BACKORDERS_CHANNELS_CONFIG", None)  # the built-in file sinks under BACKORDERS_DATA_DIR/feeds
    log_path = tmp_path / "worker.log"
    worker = subprocess.Popen([*BACKORDERS, "worker", "channel-sync"], env=env, cwd=tmp_path,
                              stdout=log_path.open("a"), stderr=subprocess.STDOUT)
    bad = poison(topics)
    expected: dict[str, tuple[int, int]] = {}
    records: list[tuple[str, bytes, bytes]] = []
    for n in range(30):
        sku = f"A-{n:03d}"
        expected[sku] = (n, n % 4)
        records.append((topics["reference"], sku.encode(), _bytes(product(sku, f"Product {n}"))))
        records.append((topics["positions"], sku.encode(), _bytes(position(sku, n, n % 4))))
        if n % 3 == 1:
            topic, key, value, _ = bad[n // 3]
            records.append((topic, key, value))
    try:
        time.sleep(3)  # the lock, then the group and the partitions
        asyncio.run(produce(servers, records))
        deadline = time.monotonic() + 120
        while True:
            taken = asyncio.run(_positions(url, schema))
            dead = _dead_letters(url, schema, env)
            if taken == expected and len(dead) >= len(bad):
                break
            assert worker.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, (f"{len(taken)} of {len(expected)} positions, {len(dead)} of "
                                                 f"{len(bad)} dead letters\n" + log_path.read_text()[-3000:])
            time.sleep(1.0)
        overstock = tmp_path / "feeds" / "overstock"
        deadline = time.monotonic() + 60
        while _overstock_skus(overstock) != set(expected):  # pushed to the feeds too
            assert worker.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, f"feeds: {sorted(_overstock_skus(overstock))}"
            time.sleep(0.5)
        time.sleep(2.0)
        assert worker.poll() is None, "the worker exited"
        dead = _dead_letters(url, schema, env)
    finally:
        stop(worker)
        asyncio.run(_drop_schema(url, schema))

    assert_dead_lettered(dead, bad)


def _overstock_skus(folder) -> set[str]:
    skus = set()
    for path in sorted(folder.glob("*.csv")) if folder.exists() else []:
        skus |= {line.split(",")[0] for line in path.read_text().splitlines()[1:]}
    return skus


def _dead_letters(url: str, schema: str, env: dict) -> list[dict]:
    return listed_dead_letters(["channels", "dead-letters", "--db", url, "--schema", schema, "--json"], env)
