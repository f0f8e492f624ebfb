"""The Kafka worker rides out a PostgreSQL restart and a broker restart in the middle of a
workload: afterwards nothing is lost or applied twice, and after a full recalculation the
state equals `replay` of the same log."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from backorders_platform.kafka_settings import KafkaSettings
from backorders_workload import WorkloadShape
from integration.conftest import (
    _drop_schema,
    day_and_expected,
    kafka_bootstrap,
    postgres_url,
)
from integration.test_kafka_worker import create_topics
from recalculator.cli.worker import produce
from recalculator.kafka.worker import RecalculatorWorker
from recalculator.runtime.embedded import EmbeddedRuntime
from support import published

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _local_port(address: str, what: str) -> int:
    """The port of a 127.0.0.1/localhost address; the test restarts local servers only."""
    parsed = urlsplit(address if "://" in address else f"//{address}")
    if parsed.hostname not in ("127.0.0.1", "localhost") or parsed.port is None:
        pytest.fail(f"this test restarts the local {what} that deploy/test-env.sh started; "
                    f"{address!r} is not one")
    return parsed.port


def postgres_cluster() -> tuple[str, str]:
    """(version, name) of the local PostgreSQL cluster listening on DATABASE_URL's port: the
    one deploy/test-env.sh started (PG_VERSION / PG_CLUSTER), not some other cluster of the
    machine."""
    port = _local_port(postgres_url(), "PostgreSQL cluster")
    listed = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True)
    for line in listed.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == str(port):
            return fields[0], fields[1]
    pytest.fail(f"no local PostgreSQL cluster listens on port {port} (pg_lsclusters)")


def restart_postgres() -> None:
    version, cluster = postgres_cluster()
    result = subprocess.run(["pg_ctlcluster", version, cluster, "restart"], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"this test restarts the local PostgreSQL cluster {version}/{cluster}: {result.stderr.strip()}")


def broker_environment() -> dict[str, str]:
    """deploy/kafka.sh's settings for the broker the tests use: its port from
    KAFKA_BOOTSTRAP_SERVERS, and its controller port as that broker was configured (the
    server.properties kafka.sh wrote in its data directory), else KAFKA_CONTROLLER_PORT."""
    port = _local_port(kafka_bootstrap().split(",")[0], "Kafka broker")
    cache = Path(os.environ.get("BACKORDERS_CACHE") or Path.home() / ".cache" / "backorders")
    props = cache / "kafka" / "data" / str(port) / "server.properties"
    controller = os.environ.get("KAFKA_CONTROLLER_PORT")
    if props.is_file():
        found = re.search(r"^controller\.quorum\.voters=\d+@[^:]+:(\d+)\s*$", props.read_text(), re.MULTILINE)
        if found:
            controller = found.group(1)
    if not controller:
        pytest.fail(f"cannot tell the controller port of the broker on port {port}: no {props} "
                    "and no KAFKA_CONTROLLER_PORT")
    return {**os.environ, "KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": controller}


def restart_broker() -> None:
    env = broker_environment()
    for command in ("stop", "start"):
        result = subprocess.run(["bash", str(DEPLOY / "kafka.sh"), command], capture_output=True, text=True,
                                env=env)
        if result.returncode != 0:
            pytest.fail(f"this test restarts the local broker (deploy/kafka.sh {command} on port "
                        f"{env['KAFKA_PORT']}): {result.stderr}")


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
