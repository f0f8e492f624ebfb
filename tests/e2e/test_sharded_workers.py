"""The sharded recalculator as separate worker processes on real Kafka and PostgreSQL, while
a workload streams in: workers scaled 1 → 2 → 1, and workers SIGKILLed at random points and
restarted. Afterwards every input is applied once or dead-lettered (or is the one deliberate
duplicate), no output id is in any outbox twice, and the state per order equals `replay`."""

from __future__ import annotations

import asyncio
import json
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
from integration.test_sharded_worker import SHARDS, assembled, expected_state
from recalculator.cli.worker import produce
from recalculator.domain.model import NONE
from recalculator.kafka import sharded
from sqlalchemy import text

BACKORDERS = [sys.executable, "-m", "backorders_app.main"]


async def stage_counts(url: str, base: str) -> dict:
    """Applied and dead-lettered inputs (the router's), and the outputs of every stage."""
    result = {"outbox": 0, "outbox_ids": set(), "positions": {}}
    schemas = [sharded.router_schema(base), sharded.assembler_schema(base),
               *(sharded.shard_schema(base, p) for p in range(SHARDS))]
    for schema in schemas:
        db = make_engine(url, schema)
        try:
            async with db.connect() as conn:
                ids = (await conn.execute(text("select event_id from outbox"))).scalars().all()
                result["outbox"] += len(ids)
                result["outbox_ids"].update(ids)
                if schema == schemas[0]:
                    for table in ("processed_events", "dead_letters"):
                        result[table] = (await conn.execute(text(f"select count(*) from {table}"))).scalar_one()
                    result["positions"] = dict((await conn.execute(text("select source, position from positions"))).all())
        except Exception:  # noqa: BLE001 - a stage that has not started yet
            pass
        finally:
            await db.dispose()
    return result


def routed_inputs(url: str, base: str) -> int:
    """Input records the router has committed, over every input partition."""
    try:
        state = asyncio.run(stage_counts(url, base))
    except Exception:  # noqa: BLE001
        return 0
    return sum(position + 1 for key, position in state["positions"].items() if ":" in key)


def settled(url: str, base: str) -> bool:
    try:
        return not any(asyncio.run(sharded.backlog(url, base)).values())
    except Exception:  # noqa: BLE001
        return False


class Cluster:
    def __init__(self, url: str, base: str, env: dict, logs) -> None:
        self.command = [*BACKORDERS, "worker", "recalculator", "--db", url, "--schema", base,
                        "--shards", str(SHARDS), "--batch-size", "200", "--recalc-every-minutes", "0",
                        "--metrics-port", "0"]
        self.env, self.logs = env, logs
        self.processes: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        process = subprocess.Popen(self.command, env=self.env, stdout=subprocess.DEVNULL, stderr=self.logs)
        self.processes.append(process)
        return process

    def alive(self) -> list[subprocess.Popen]:
        return [p for p in self.processes if p.poll() is None]

    def stop_all(self) -> None:
        for process in self.alive():
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()


def finish(url, base, lines, final, kafka, topics, cluster) -> int:
    """The full recalculation once every input is routed, then until every stage is done."""
    def wait(condition, what: str) -> None:
        deadline = time.monotonic() + 240
        while not condition():
            assert cluster.alive(), "every worker stopped"
            assert time.monotonic() < deadline, f"{what}: {asyncio.run(stage_counts(url, base))['positions']}"
            time.sleep(0.5)

    wait(lambda: routed_inputs(url, base) >= len(lines), "the router did not catch up")
    asyncio.run(produce([final], kafka, topics))
    wait(lambda: routed_inputs(url, base) >= len(lines) + 1, "the router did not take the recalculation")
    wait(lambda: settled(url, base), "the stages did not finish")
    return len(lines) + 1


def check(url: str, base: str, total: int, expected, label: str) -> None:
    state = asyncio.run(stage_counts(url, base))
    print(f"\n{label}: {total} inputs, {state['processed_events']} applied, "
          f"{state['dead_letters']} dead-lettered, {state['outbox']} outputs "
          f"({len(state['outbox_ids'])} distinct ids)")
    assert state["outbox"] == len(state["outbox_ids"]), "an output id appears twice"
    # Every input is applied once, dead-lettered once, or the one deliberate duplicate.
    assert state["processed_events"] + state["dead_letters"] + 1 == total
    got = assembled(asyncio.run(sharded.assembled_state(url, base)))
    want = expected_state(expected)
    for order_id in want.keys() - got.keys():
        got[order_id] = (NONE, {})
    mismatched = sorted(o for o in want if got.get(o) != want[o])
    assert not mismatched, f"{len(mismatched)} orders differ from replay, e.g. {mismatched[:3]}"


@pytest.fixture
def setting(tmp_path):
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not servers:
        pytest.fail("KAFKA_BOOTSTRAP_SERVERS is not set: run the tests through `make test`")
    url = postgres_url()
    base = f"shx_{uuid.uuid4().hex[:10]}"
    topics = asyncio.run(create_topics(servers))
    env = {**os.environ, "BACKORDERS_TOPIC_ORDERS": topics.orders, "BACKORDERS_TOPIC_INVENTORY": topics.inventory,
           "BACKORDERS_TOPIC_REFERENCE": topics.reference, "BACKORDERS_TOPIC_COMMANDS": topics.commands,
           "BACKORDERS_TOPIC_BACKORDER_CHANGED": f"out.bc.{base}",
           "BACKORDERS_TOPIC_PRODUCT_BACKORDER_CHANGED": f"out.pbc.{base}",
           "BACKORDERS_TOPIC_SKU_POSITION_CHANGED": f"out.pos.{base}",
           "BACKORDERS_TOPIC_DEAD_LETTERS": f"out.dlq.{base}", "KAFKA_BOOTSTRAP_SERVERS": servers,
           "BACKORDERS_LOG_LEVEL": "info"}
    with open(tmp_path / "workers.log", "wb") as logs:
        yield url, base, topics, KafkaSettings(bootstrap_servers=servers), env, logs, tmp_path / "workers.log"
    for schema in [base, sharded.router_schema(base), sharded.assembler_schema(base),
                   *(sharded.shard_schema(base, p) for p in range(SHARDS))]:
        asyncio.run(_drop_schema(url, schema))


def streaming(lines, kafka, topics) -> threading.Thread:
    def stream():
        for start in range(0, len(lines), 200):
            asyncio.run(produce(lines[start:start + 200], kafka, topics))
            time.sleep(0.15)

    thread = threading.Thread(target=stream)
    thread.start()
    return thread


def test_workers_scaled_one_two_one_while_the_workload_streams_in(setting):
    url, base, topics, kafka, env, logs, log_path = setting
    lines, final, expected = day_and_expected(23, WorkloadShape(orders=3000, skus=200))
    cluster = Cluster(url, base, env, logs)
    producer = streaming(lines, kafka, topics)
    try:
        first = cluster.start()
        time.sleep(4)
        second = cluster.start()  # 1 → 2: the shards are shared out
        time.sleep(5)
        second.send_signal(signal.SIGTERM)  # 2 → 1: its shards go back to the first
        assert second.wait(timeout=40) == 0
        assert first.poll() is None
        producer.join()
        total = finish(url, base, lines, final, kafka, topics, cluster)
    finally:
        producer.join()
        cluster.stop_all()
    taken = [line for line in log_path.read_text().splitlines() if '"shard_taken"' in line]
    # Four shards taken at the start, some handed to the second worker, and back.
    assert len(taken) > SHARDS, taken
    check(url, base, total, expected, "sharded scale 1→2→1")
    # What an operator sees once the workers stopped: nothing waiting anywhere.
    status = subprocess.run([*BACKORDERS, "status", "--db", url, "--schema", base, "--shards", str(SHARDS),
                             "--json"], env=env, capture_output=True, text=True, check=False)
    assert status.returncode == 0, status.stderr[-2000:]
    report = json.loads(status.stdout)
    state = asyncio.run(stage_counts(url, base))
    assert report["dead_letters"] == state["dead_letters"] > 0
    assert report["lag"] and not any(report["lag"].values())
    assert not any(report["routed_waiting_by_shard"].values()) and report["causes_waiting"] == 0
    assert report["outbox_events"] == state["outbox"] and report["outbox_backlog"] == 0
    assert report["live_workers"] == {}


def test_sigkill_sharded_workers_while_the_workload_streams_in(setting):
    url, base, topics, kafka, env, logs, _ = setting
    lines, final, expected = day_and_expected(29, WorkloadShape(orders=3000, skus=200))
    cluster = Cluster(url, base, env, logs)
    producer = streaming(lines, kafka, topics)
    rng = random.Random(int(os.environ.get("CRASH_SEED", "13")))
    kills = []
    try:
        cluster.start()
        cluster.start()
        for _ in range(3):
            time.sleep(rng.uniform(1.5, 3.0))
            victim = rng.choice(cluster.alive())
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            kills.append(routed_inputs(url, base))
            cluster.start()
        producer.join()
        total = finish(url, base, lines, final, kafka, topics, cluster)
    finally:
        producer.join()
        cluster.stop_all()
    print(f"\nkills after {kills} routed inputs")
    assert kills[-1] > 0
    check(url, base, total, expected, "sharded crash test")


@pytest.mark.parametrize("server", ["PostgreSQL", "broker"])
def test_sharded_workers_ride_out_a_server_restart_mid_stream(setting, server):
    from e2e.test_server_restarts import restart_broker, restart_postgres

    url, base, topics, kafka, env, logs, _ = setting
    lines, final, expected = day_and_expected(31, WorkloadShape(orders=1500, skus=120))
    half = len(lines) // 2
    cluster = Cluster(url, base, env, logs)
    try:
        asyncio.run(produce(lines[:half], kafka, topics))
        cluster.start()
        cluster.start()
        deadline = time.monotonic() + 60
        while routed_inputs(url, base) == 0:
            assert time.monotonic() < deadline, "the router committed nothing"
            time.sleep(0.1)
        (restart_postgres if server == "PostgreSQL" else restart_broker)()
        asyncio.run(produce(lines[half:], kafka, topics))
        total = finish(url, base, lines, final, kafka, topics, cluster)
        assert len(cluster.alive()) == 2, "a worker stopped"
    finally:
        cluster.stop_all()
    check(url, base, total, expected, f"sharded, {server} restarted mid-stream")
