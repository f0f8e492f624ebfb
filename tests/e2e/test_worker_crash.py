"""SIGKILL the Kafka worker at random points while a workload streams into the input
topics, restart it each time, then a full recalculation: nothing lost, nothing applied
twice, no output id twice, and the final state equals `replay` of the same log."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
from backorders_platform.database import make_engine
from backorders_platform.kafka_settings import KafkaSettings
from backorders_workload import WorkloadShape
from integration.conftest import _drop_schema, day_and_expected, postgres_url
from integration.test_kafka_worker import create_topics
from recalculator.cli.worker import produce
from recalculator.runtime.embedded import EmbeddedRuntime
from sqlalchemy import text
from support import published

BACKORDERS = [sys.executable, "-m", "backorders_app.main"]


async def counts(url: str, schema: str) -> dict:
    db = make_engine(url, schema)
    try:
        async with db.connect() as conn:
            result = {}
            for table in ("processed_events", "dead_letters", "outbox"):
                result[table] = (await conn.execute(text(f"select count(*) from {table}"))).scalar_one()
            result["outbox_ids"] = (await conn.execute(text("select count(distinct event_id) from outbox"))).scalar_one()
            result["positions"] = dict((await conn.execute(text("select source, position from positions"))).all())
            return result
    finally:
        await db.dispose()


def handled(url: str, schema: str) -> int:
    """Input records handled (committed) so far, over every input partition."""
    try:
        state = asyncio.run(counts(url, schema))
    except Exception:  # noqa: BLE001 - the schema is not there yet
        return 0
    return sum(position + 1 for key, position in state["positions"].items() if ":" in key)


def recalculate_once_consumed(url, schema, lines, final, kafka, topics, worker) -> int:
    """The full recalculation once the inputs are consumed: published on its own topic
    earlier, it could be handled before records of other partitions still unread. Returns
    the number of inputs, the recalculation included, once all are handled."""

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 180
        while handled(url, schema) < count:
            assert worker.poll() is None, "the remaining worker stopped"
            assert time.monotonic() < deadline, f"worker did not catch up: {handled(url, schema)}/{count}"
            time.sleep(0.5)

    wait_for(len(lines))
    asyncio.run(produce([final], kafka, topics))
    wait_for(len(lines) + 1)
    return len(lines) + 1


def test_sigkill_while_the_workload_streams_in(tmp_path):
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not servers:
        pytest.fail("KAFKA_BOOTSTRAP_SERVERS is not set: run the tests through `make test`")
    url = postgres_url()
    schema = f"crash_{uuid.uuid4().hex[:10]}"
    topics = asyncio.run(create_topics(servers))
    kafka = KafkaSettings(bootstrap_servers=servers)
    lines, final, expected = day_and_expected(21, WorkloadShape(orders=6000, skus=300))

    env = {**os.environ, "BACKORDERS_TOPIC_ORDERS": topics.orders, "BACKORDERS_TOPIC_INVENTORY": topics.inventory,
           "BACKORDERS_TOPIC_REFERENCE": topics.reference, "BACKORDERS_TOPIC_COMMANDS": topics.commands,
           "KAFKA_BOOTSTRAP_SERVERS": servers}
    worker = [*BACKORDERS, "worker", "recalculator", "--db", url, "--schema", schema, "--batch-size", "100",
              "--recalc-every-minutes", "0", "--metrics-port", "0"]

    # The workload streams in while the worker is killed and restarted.
    def stream():
        for start in range(0, len(lines), 200):
            asyncio.run(produce(lines[start:start + 200], kafka, topics))
            time.sleep(0.15)

    producer = threading.Thread(target=stream)
    producer.start()
    rng = random.Random(int(os.environ.get("CRASH_SEED", "11")))
    kills = []
    try:
        for _ in range(3):
            process_ = subprocess.Popen(worker, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # Killed at a random moment once it has committed something of its own (its
            # start-up takes longer on a busy machine).
            before, deadline = handled(url, schema), time.monotonic() + 60
            while handled(url, schema) == before and time.monotonic() < deadline:
                assert process_.poll() is None, "the worker stopped by itself"
                time.sleep(0.1)
            time.sleep(rng.uniform(0.1, 1.0))
            assert process_.poll() is None, "the worker stopped by itself"
            process_.send_signal(signal.SIGKILL)
            process_.wait()
            kills.append(sum(asyncio.run(counts(url, schema))["positions"].values()))
        producer.join()
        survivor = subprocess.Popen(worker, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        total = recalculate_once_consumed(url, schema, lines, final, kafka, topics, survivor)
        survivor.send_signal(signal.SIGTERM)
        survivor.wait(timeout=30)

        state = asyncio.run(counts(url, schema))
        print(f"\nworker crash test: {total} inputs, kills after {kills} committed offsets, "
              f"{state['processed_events']} applied, {state['dead_letters']} dead-lettered, "
              f"{state['outbox']} outputs ({state['outbox_ids']} distinct ids)")
        assert len(set(kills)) == 3 and kills[0] > 0, f"kills did not land between commits: {kills}"
        assert state["outbox"] == state["outbox_ids"], "an output id appears twice"
        # Every input is applied once, dead-lettered once, or the one deliberate duplicate.
        assert state["processed_events"] + state["dead_letters"] + 1 == total
        async def final_state():
            async with EmbeddedRuntime(url, schema=schema) as reloaded:
                return published(reloaded.engine)
        assert asyncio.run(final_state()) == published(expected)
    finally:
        producer.join()
        asyncio.run(_drop_schema(url, schema))
