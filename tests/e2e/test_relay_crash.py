"""Kill the outbox relay with SIGKILL while it publishes, restart it, and check that every
committed event reached Kafka, repeats are only of the batch in flight, and per key the
order is the commit order."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid

import pytest
from integration.conftest import consume_all

BACKORDERS = [sys.executable, "-m", "backorders_app.main"]
BATCH = 50


def relay_position(db) -> int:
    with sqlite3.connect(db) as conn:
        row = conn.execute("select position from positions where source = 'outbox-relay'").fetchone()
    return row[0] if row else 0


def test_sigkill_during_relay_loses_nothing(tmp_path):
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not servers:
        pytest.fail("KAFKA_BOOTSTRAP_SERVERS is not set: run the tests through `make test`")
    db = tmp_path / "state.sqlite"
    made = subprocess.run([*BACKORDERS, "run", "--orders", "12000", "--skus", "400", "--db", str(db),
                           "--no-progress"], capture_output=True, text=True,
                          env={**os.environ, "BACKORDERS_DATA_DIR": str(tmp_path)})
    assert made.returncode == 0, made.stderr
    with sqlite3.connect(db) as conn:
        outbox = conn.execute("select seq, event_id, event_type, subject from outbox order by seq").fetchall()

    suffix = uuid.uuid4().hex[:10]
    env = {**os.environ, "BACKORDERS_TOPIC_BACKORDER_CHANGED": f"crash.bc.{suffix}",
           "BACKORDERS_TOPIC_PRODUCT_BACKORDER_CHANGED": f"crash.pbc.{suffix}",
           "BACKORDERS_TOPIC_SKU_POSITION_CHANGED": f"crash.spc.{suffix}"}
    relay = [*BACKORDERS, "relay", "--db", str(db), "--batch-size", str(BATCH)]
    rng = random.Random(int(os.environ.get("CRASH_SEED", "7")))
    kills = []
    for _ in range(8):
        if len(kills) >= 3:
            break
        before = relay_position(db)
        process = subprocess.Popen(relay, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # Killed a random moment after it began to send (its start-up time varies with the
        # machine's load, and a kill before the first batch proves nothing).
        started = time.monotonic() + 60
        while relay_position(db) == before and process.poll() is None and time.monotonic() < started:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait()
        after = relay_position(db)
        if before < after < outbox[-1][0]:
            kills.append((before, after))
    assert len(kills) >= 2, f"too few kills landed while the relay was sending: {kills}"
    done = subprocess.run([*relay, "--once"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert relay_position(db) == outbox[-1][0]

    received = asyncio.run(consume_all(servers, [env["BACKORDERS_TOPIC_BACKORDER_CHANGED"],
                                             env["BACKORDERS_TOPIC_PRODUCT_BACKORDER_CHANGED"],
                                             env["BACKORDERS_TOPIC_SKU_POSITION_CHANGED"]],
                                   len(outbox)))
    ids = [dict(r.headers)["ce_id"].decode() for r in received]
    repeats = len(ids) - len(set(ids))
    print(f"\nrelay crash test: {len(outbox)} outbox events, kills at relay positions {kills}, "
          f"{len(received)} received, {len(set(ids))} distinct, {repeats} repeats")
    assert set(ids) == {row[1] for row in outbox}, "an event was lost"
    assert repeats <= (len(kills) + 8) * BATCH, "more repeats than the batches in flight"
    # Per key, first appearances follow the commit order.
    first_seen: dict[tuple[str, bytes], list[str]] = {}
    seen_ids = set()
    for record in sorted(received, key=lambda r: (r.topic, r.partition, r.offset)):
        event_id = dict(record.headers)["ce_id"].decode()
        if event_id not in seen_ids:
            seen_ids.add(event_id)
            first_seen.setdefault((record.topic, record.key), []).append(event_id)
    committed: dict[tuple[str, bytes], list[str]] = {}
    for _, event_id, event_type, subject in outbox:
        topic = env[{"BackorderChanged": "BACKORDERS_TOPIC_BACKORDER_CHANGED",
                     "ProductBackorderChanged": "BACKORDERS_TOPIC_PRODUCT_BACKORDER_CHANGED",
                     "SkuPositionChanged": "BACKORDERS_TOPIC_SKU_POSITION_CHANGED"}[event_type]]
        committed.setdefault((topic, subject.encode()), []).append(event_id)
    assert first_seen == committed
