"""Channel-sync's faust-streaming worker on a real Kafka broker and PostgreSQL, with a real
HTTP server standing in for Wayfair, Overstock and Magento. A generated day's purchase
orders, containers, products and receipts are on the input topics; its SkuPositionChanged
events stream in while the worker is killed with SIGKILL and started again, three times.

At the end every channel holds exactly the rows a from-scratch projection of the same
events gives (nothing lost), a row is sent again unchanged only for a batch in flight at a
kill (nothing accepted is re-sent), and one more restart sends nothing at all."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from backorders_platform.database import make_engine, sqlite_url
from backorders_workload import WorkloadShape, generate_day
from channel_support import CREDENTIALS, StandIn, http_config
from channel_sync.domain import feeds
from channel_sync.domain.projection import Projection
from channel_sync.service import parse
from integration.conftest import _drop_schema, postgres_url
from integration.test_channel_embedded import _toml
from recalculator.publishing import to_json
from recalculator.runtime.embedded import EmbeddedRuntime
from sqlalchemy import text

BATCHES = {"wayfair": 20, "overstock": 50, "magento": 25}
FEED_INPUTS = {"PurchaseOrderUpdated", "ContainerUpdated", "POReceived", "ProductUpserted", "SettingsChanged"}


class ThreadedStandIn:
    """The stand-in server on its own event loop, so the test can drive subprocesses."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> StandIn:
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(StandIn().start(), self.loop).result()
        return self.server

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


async def create_topics(servers: str, names: dict[str, int]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, num_partitions=p, replication_factor=1) for n, p in names.items()])
    finally:
        await admin.close()


async def publish(servers: str, messages: list[tuple[str, bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for topic, key, value in messages:
            await producer.send(topic, value=value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def state(url: str, schema: str) -> dict:
    db = make_engine(url, schema)
    try:
        async with db.connect() as conn:
            exists = (await conn.execute(text(
                "select count(*) from information_schema.tables where table_schema = :s "
                "and table_name = 'channel_sync_sources'"), {"s": schema})).scalar_one()
            if not exists:
                return {"sources": {}, "pending": 0, "failures": 0}
            sources = dict((await conn.execute(text("select source, position from channel_sync_sources"))).all())
            pending = (await conn.execute(text("select count(*) from channel_sync_pending"))).scalar_one()
            failures = (await conn.execute(text("select count(*) from channel_sync_failures"))).scalar_one()
            return {"sources": sources, "pending": pending, "failures": failures}
    finally:
        await db.dispose()


def day(tmp_path: Path):
    """A generated day: the raw inputs, and the SkuPositionChanged the recalculator published."""
    events = generate_day(13, WorkloadShape(orders=1500, skus=120))
    inputs = [e for e in events if "__raw__" not in e and e["type"] in FEED_INPUTS]

    async def recalculate():
        async with EmbeddedRuntime(sqlite_url(tmp_path / "recalc.sqlite")) as runtime:
            await runtime.consume("day", [(n, e.get("__raw__") or to_json(e)) for n, e in enumerate(events, 1)])
            rows = await runtime.repository.outbox_rows(0, 10_000_000)
        return [row for row in rows if row.event_type == "SkuPositionChanged"]

    return inputs, asyncio.run(recalculate())


def expected_rows(inputs, positions, channel: str) -> dict[str, dict]:
    projection = Projection()
    for event in inputs:
        projection.apply(parse(json.dumps(event)))
    for row in positions:
        projection.apply(parse(row.payload))
    from channel_sync import config

    options = config.parse(http_config("http://x"), Path("var"), CREDENTIALS).channels[channel].options()
    return {sku: r for sku, r in feeds.rows(projection, options, projection.skus()).items() if r is not None}


def received(server: StandIn) -> dict[str, list[tuple[str, str]]]:
    """Per channel, every (sku, row) the server got, in arrival order."""
    out: dict[str, list[tuple[str, str]]] = {"wayfair": [], "overstock": [], "magento": []}
    for call in list(server.requests):
        if call.channel == "wayfair":
            for item in call.json()["variables"]["inventory"]:
                out["wayfair"].append((item["supplierPartNumber"], json.dumps(item, sort_keys=True)))
        elif call.channel == "overstock":
            for line in csv.DictReader(io.StringIO(call.body)):
                out["overstock"].append((line["SKU"], json.dumps(line, sort_keys=True)))
        elif call.channel == "magento":
            out["magento"].append((call.path.split("/")[-3], json.dumps(call.json(), sort_keys=True)))
    return out


def test_sigkill_while_positions_stream_in_loses_nothing_and_resends_nothing_accepted(tmp_path):
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not servers:
        pytest.fail("KAFKA_BOOTSTRAP_SERVERS is not set: run the tests through `make test`")
    url = postgres_url()
    suffix = uuid.uuid4().hex[:10]
    schema = f"chan_{suffix}"
    topics = {"inventory": f"cs.inv.{suffix}", "reference": f"cs.ref.{suffix}", "positions": f"cs.spc.{suffix}"}
    # Three inventory partitions: a PO's updates and receipts (published without a key) land on
    # different ones and are taken in out of order.
    asyncio.run(create_topics(servers, {topics["inventory"]: 3, topics["reference"]: 1, topics["positions"]: 3}))
    inputs, positions = day(tmp_path)
    assert len(positions) > 1000

    with ThreadedStandIn() as server:
        config = tmp_path / "channels.toml"
        config.write_text(_toml(http_config(server.base, **{n: {"batch_size": b} for n, b in BATCHES.items()})))
        env = {
            **os.environ, **CREDENTIALS,
            "KAFKA_BOOTSTRAP_SERVERS": servers,
            "BACKORDERS_TOPIC_INVENTORY": topics["inventory"], "BACKORDERS_TOPIC_REFERENCE": topics["reference"],
            "BACKORDERS_TOPIC_SKU_POSITION_CHANGED": topics["positions"],
            "CHANNEL_SYNC_DATABASE_URL": url, "CHANNEL_SYNC_SCHEMA": schema, "CHANNEL_SYNC_CONFIG": str(config),
            "CHANNEL_SYNC_APP_ID": f"cs-test-{suffix}", "CHANNEL_SYNC_BATCH_SIZE": "40",
            "CHANNEL_SYNC_PUSH_EVERY_SECONDS": "2", "CHANNEL_SYNC_SESSION_TIMEOUT_SECONDS": "6",
            "BACKORDERS_DATA_DIR": str(tmp_path),
        }
        faust_worker = [sys.executable, "-m", "faust", "-A", "channel_sync.kafka_app", "worker", "--without-web",
                        "-l", "info"]
        cli_worker = [sys.executable, "-m", "backorders_app.main", "worker", "channel-sync"]
        log = open(tmp_path / "worker.log", "ab")

        def start(command):
            return subprocess.Popen(command, env=env, stdout=log, stderr=log, cwd=tmp_path)

        # Purchase orders, containers, products and receipts first, as they were in the day.
        reference = {"ProductUpserted", "SettingsChanged"}
        asyncio.run(publish(servers, [
            (topics["reference"] if e["type"] in reference else topics["inventory"], None, json.dumps(e).encode())
            for e in inputs
        ]))

        def stream():
            # About 40 seconds of positions, so that the kills land while they stream in.
            for start_at in range(0, len(positions), 40):
                chunk = positions[start_at:start_at + 40]
                asyncio.run(publish(servers, [(topics["positions"], r.subject.encode(), r.payload.encode())
                                              for r in chunk]))
                time.sleep(0.8)

        producer = threading.Thread(target=stream)
        producer.start()
        rng = random.Random(int(os.environ.get("CRASH_SEED", "5")))
        kills = []
        try:
            for n in range(3):
                worker = start(faust_worker if n != 1 else cli_worker)
                # Started, given its partitions (the killed one's session has timed out), busy.
                time.sleep(rng.uniform(11.0, 14.0))
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                kills.append(sum(asyncio.run(state(url, schema))["sources"].values()))
            producer.join()
            total_records = len(inputs) + len(positions)

            # Started again: it catches up and pushes everything still pending.
            worker = start(faust_worker)
            deadline = time.monotonic() + 180
            while True:
                now = asyncio.run(state(url, schema))
                done = sum(pos + 1 for pos in now["sources"].values())  # offsets start at 0
                if done >= total_records and now["pending"] == 0:
                    break
                assert time.monotonic() < deadline, f"not caught up: {now}, {done}/{total_records}"
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
                time.sleep(0.5)
            time.sleep(1.0)
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
            settled = len(server.requests)

            # One more restart with nothing new: nothing is sent.
            worker = start(faust_worker)
            time.sleep(10)
            assert worker.poll() is None
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            assert len(server.requests) == settled, "a restart sent rows that were already accepted"
            final_state = asyncio.run(state(url, schema))
        finally:
            producer.join()
            log.close()
            asyncio.run(_drop_schema(url, schema))

        assert final_state["failures"] == 0
        assert len(set(kills)) == 3 and kills == sorted(kills) and kills[0] > 0, f"kills not mid-stream: {kills}"
        got = received(server)
        repeats = {}
        for channel, sends in got.items():
            expected = expected_rows(inputs, positions, channel)
            last: dict[str, str] = {}
            repeats[channel] = 0
            for sku, row in sends:
                repeats[channel] += last.get(sku) == row
                last[sku] = row
            final = {sku: json.loads(row) for sku, row in last.items()}
            if channel == "wayfair":
                assert final == expected
            elif channel == "overstock":
                assert final == {r["sku"]: {"SKU": r["sku"], "Quantity": str(r["quantity"]),
                                            "QuantityOnOrder": str(r["quantityOnOrder"]), "ETA": r["eta"] or ""}
                                 for r in expected.values()}
            else:
                assert final == {sku: {"stockItem": r["stockItem"]} for sku, r in expected.items()}
            assert repeats[channel] <= len(kills) * BATCHES[channel], f"{channel}: {repeats[channel]} rows re-sent"
        print(f"\nchannel-sync kill test: {len(inputs)} inputs + {len(positions)} positions, kills at "
              f"{kills} records; rows received {({c: len(s) for c, s in got.items()})}, "
              f"re-sent unchanged {repeats}, HTTP requests {len(server.requests)}")
