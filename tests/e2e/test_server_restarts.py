"""The Kafka worker rides out a PostgreSQL restart and a broker restart in the middle of a
workload: afterwards nothing is lost or applied twice, and after a full recalculation the
state equals `replay` of the same log."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path

import pytest
from integration.conftest import (
    _drop_schema,
    day_and_expected,
    kafka_bootstrap,
    postgres_url,
)
from integration.test_kafka_worker import create_topics
from recalculator.cli.worker import produce
from recalculator.kafka.settings import KafkaSettings
from recalculator.kafka.worker import RecalculatorWorker
from recalculator.runtime.embedded import EmbeddedRuntime
from recalculator.workload import WorkloadShape
from support import published

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def restart_postgres() -> None:
    result = subprocess.run(["pg_ctlcluster", "15", "main", "restart"], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"this test restarts the local PostgreSQL 15 cluster: {result.stderr.strip()}")


def restart_broker() -> None:
    for command in ("stop", "start"):
        result = subprocess.run(["bash", str(DEPLOY / "kafka.sh"), command], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"this test restarts the local broker (deploy/kafka.sh {command}): {result.stderr}")


async def scenario(restart) -> None:
    servers, url = kafka_bootstrap(), postgres_url()
    schema = f"restart_{uuid.uuid4().hex[:10]}"
    topics = await create_topics(servers)
    kafka = KafkaSettings(bootstrap_servers=servers)
    lines, final, expected = day_and_expected(33, WorkloadShape(orders=1500, skus=120))
    half = len(lines) // 2
    try:
        await produce(lines[:half], kafka, topics)
        async with RecalculatorWorker(url, schema=schema, kafka=kafka, topics=topics, batch_size=100) as worker:
            stop = asyncio.Event()
            running = asyncio.create_task(worker.run(stop))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while not await worker.runtime.repository.positions():
                assert loop.time() < deadline, "the worker committed nothing"
                await asyncio.sleep(0.05)
            await asyncio.to_thread(restart)  # mid-stream
            await produce(lines[half:], kafka, topics)

            async def caught_up() -> None:
                deadline = loop.time() + 120
                while True:
                    try:
                        if not any((await worker.lag()).values()):
                            return
                    except Exception:  # noqa: BLE001 - a server is still coming back
                        pass
                    assert loop.time() < deadline, "the worker did not catch up after the restart"
                    assert not running.done(), f"the worker stopped: {running.exception()}"
                    await asyncio.sleep(0.2)

            await caught_up()
            await produce([final], kafka, topics)  # the full recalculation, once all is consumed
            await caught_up()
            stop.set()
            await running
            assert published(worker.runtime.engine) == published(expected)
            recoveries = worker.recoveries
        async with EmbeddedRuntime(url, schema=schema) as reloaded:
            assert published(reloaded.engine) == published(expected)
            processed = len(reloaded.engine.processed)
            dead = len(await reloaded.repository.dead_letter_records())
        # Every input applied once, dead-lettered once, or the one deliberate duplicate.
        assert processed + dead + 1 == len(lines) + 1
        return recoveries
    finally:
        await _drop_schema(url, schema)


def test_postgres_restart_mid_stream():
    recoveries = asyncio.run(scenario(restart_postgres))
    print(f"\nPostgreSQL restart: the worker went back to its last commit {recoveries} time(s)")


def test_broker_restart_mid_stream():
    asyncio.run(scenario(restart_broker))
