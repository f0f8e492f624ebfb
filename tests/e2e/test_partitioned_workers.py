"""The partitioned recalculator as separate `backorders worker recalculator --partitioned`
processes on real Kafka and PostgreSQL: 1, 2 and 3 processes end as `replay` of the same
log; and a crash battery while the log streams in (scale 1 → 3, three SIGKILLs each followed
by a restart, a broker restart, a PostgreSQL restart, scale 3 → 1): nothing lost, nothing
applied twice, no output id twice, the state equal to replay."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest
from backorders_platform.kafka_settings import KafkaSettings
from e2e.test_server_restarts import restart_broker, restart_postgres
from integration.conftest import _drop_schema, kafka_bootstrap, postgres_url
from integration.test_partitioned_worker import assert_like_replay, day
from partitioned_worker_support import (
    ALLOCATION,
    ASSEMBLY,
    create_partitioned_topics,
    output_topics,
    settle,
    stage_schemas,
    state,
)
from recalculator.cli.worker import produce
from recalculator.kafka.partitioned_worker import internal_topic
from recalculator.kafka.topic_admin import delete_topics
from sqlalchemy import text

BACKORDERS = [sys.executable, "-m", "backorders_app.main"]


class Cluster:
    """Worker processes of one deployment, started and stopped by the test."""

    def __init__(self, url: str, base: str, servers: str, inputs, outputs, logs) -> None:
        self.url, self.base, self.servers = url, base, servers
        self.inputs, self.outputs, self.logs = inputs, outputs, logs
        self.processes: list[subprocess.Popen] = []
        self.killed = 0

    def env(self) -> dict:
        env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=self.servers, BACKORDERS_METRICS_PORT="0",
                   BACKORDERS_LOG_LEVEL="warning")
        for name in ("orders", "inventory", "reference", "commands"):
            env[f"BACKORDERS_TOPIC_{name.upper()}"] = getattr(self.inputs, name)
        for name in ("backorder_changed", "product_backorder_changed", "sku_position_changed", "dead_letters"):
            env[f"BACKORDERS_TOPIC_{name.upper()}"] = getattr(self.outputs, name)
        return env

    def start(self) -> subprocess.Popen:
        process = subprocess.Popen(
            [*BACKORDERS, "worker", "recalculator", "--partitioned", "--db", self.url, "--schema", self.base,
             "--allocation-partitions", str(ALLOCATION), "--assembly-partitions", str(ASSEMBLY),
             "--batch-size", "200"],
            env=self.env(), stdout=self.logs, stderr=self.logs)
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen) -> None:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        self.processes.remove(process)
        self.killed += 1

    def stop(self, process: subprocess.Popen) -> None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            pytest.fail("a partitioned worker did not stop within 60 s of SIGTERM")
        self.processes.remove(process)

    def stop_all(self) -> None:
        for process in list(self.processes):
            self.stop(process)


@pytest.fixture
async def deployment(tmp_path):
    url, servers = postgres_url(), kafka_bootstrap()
    base = f"pe_{uuid.uuid4().hex[:10]}"
    inputs, outputs = await create_partitioned_topics(servers), output_topics()
    with open(tmp_path / "workers.log", "ab") as logs:
        cluster = Cluster(url, base, servers, inputs, outputs, logs)
        try:
            yield cluster
        finally:
            for process in list(cluster.processes):
                process.kill()
                process.wait(10)
            for schema in [base, *stage_schemas(base)]:
                await _drop_schema(url, schema)
            internal = [internal_topic(base, n) for n in ("order-commands", "global", "allocation", "partials")]
            await delete_topics(KafkaSettings(bootstrap_servers=servers),
                                [*inputs.all(), *internal, outputs.backorder_changed,
                                 outputs.product_backorder_changed, outputs.sku_position_changed,
                                 outputs.dead_letters])


async def dead_letter_ids(url: str, base: str) -> Counter:
    """The event id of every dead letter of every stage (None: the input could not be read)."""
    from backorders_platform.database import make_engine

    ids: Counter = Counter()
    for schema in stage_schemas(base):
        db = make_engine(url, schema)
        try:
            async with db.connect() as conn:
                ids.update((await conn.execute(text("SELECT event_id FROM dead_letters"))).scalars())
        finally:
            await db.dispose()
    return ids


def expected_refusals(lines) -> Counter:
    """The event ids `replay` refuses (None for what it cannot read), one per refusal."""
    from recalculator.domain.engine import Engine
    from recalculator.processing import process
    from recalculator.runtime.sequencing import in_log_order

    engine, refused = Engine(), Counter()
    for item in in_log_order(enumerate(lines, 1)):
        result = process(engine, item.raw, "log", item.line, parsed=item.parsed)
        if result.status == "rejected":
            refused[result.event_id] += 1
    return refused


async def check(cluster: Cluster, lines, expected) -> dict:
    """Every input applied once or refused once (the refusals are replay's, each dead-lettered
    once), no output id twice, no task waiting, the state as replay's."""
    got_lines, assembled, ids, dead, busy = await state(cluster.url, cluster.base)
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    assert busy == 0
    assert not duplicates, duplicates[:5]
    letters, wanted = await dead_letter_ids(cluster.url, cluster.base), expected_refusals(lines)
    assert letters == wanted, (letters - wanted, wanted - letters)
    whole = assert_like_replay(got_lines, assembled, expected)
    return {"outputs": len(ids), "dead_letters": dead, "orders_compared": whole}


@pytest.mark.parametrize("processes", [1, 2, 3])
async def test_worker_processes_end_as_replay(deployment, processes):
    lines, expected = day(11, 150)
    for _ in range(processes):
        deployment.start()
    kafka = KafkaSettings(bootstrap_servers=deployment.servers)
    await produce(lines, kafka, deployment.inputs)
    await settle(deployment.url, deployment.base, deployment.servers, deployment.inputs)
    assert all(process.poll() is None for process in deployment.processes), "a worker died"
    deployment.stop_all()
    figures = await check(deployment, lines, expected)
    print(f"{processes} process(es): {json.dumps(figures)}")


async def test_crash_battery(deployment):
    lines, expected = day(12, 300)
    kafka = KafkaSettings(bootstrap_servers=deployment.servers)
    chunks = [lines[len(lines) * k // 6:len(lines) * (k + 1) // 6] for k in range(6)]
    started = time.monotonic()
    first = deployment.start()
    await produce(chunks[0], kafka, deployment.inputs)
    await asyncio.sleep(4)
    deployment.start()  # scale 1 → 3
    deployment.start()
    await produce(chunks[1], kafka, deployment.inputs)
    for chunk in chunks[2:5]:  # three kills mid-stream, each followed by a restart
        await asyncio.sleep(3)
        deployment.kill(deployment.processes[-1])
        await produce(chunk, kafka, deployment.inputs)
        deployment.start()
    await asyncio.sleep(2)
    restart_broker()
    await asyncio.sleep(2)
    restart_postgres()
    await produce(chunks[5], kafka, deployment.inputs)
    for process in [p for p in deployment.processes if p is not first]:  # scale 3 → 1
        deployment.stop(process)
    await settle(deployment.url, deployment.base, deployment.servers, deployment.inputs, deadline=360)
    assert first.poll() is None, "the first worker died"
    deployment.stop_all()
    figures = await check(deployment, lines, expected)
    figures.update(killed=deployment.killed, seconds=round(time.monotonic() - started))
    print(f"crash battery: {json.dumps(figures)}")
