"""A worker started while the broker or PostgreSQL is away waits for it, says so, and
carries on once it is back; a stop request ends the wait cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid

from backorders_platform.kafka_settings import KafkaSettings
from backorders_workload import WorkloadShape, generate_day
from e2e.test_log_order import broker, fresh_topics, wait_until
from e2e.test_worker_crash import BACKORDERS, handled
from integration.conftest import _drop_schema, kafka_bootstrap, postgres_url
from recalculator.cli.worker import produce
from recalculator.publishing import to_json


def postgres(command: str) -> None:
    cluster = os.environ.get("PG_CLUSTER", "main")
    result = subprocess.run(["pg_ctlcluster", "15", cluster, command], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_worker_waits_for_the_broker_and_the_database_it_starts_without(tmp_path):
    servers, url = kafka_bootstrap(), postgres_url()
    schema = f"outage_{uuid.uuid4().hex[:10]}"
    topics = asyncio.run(fresh_topics(servers))
    kafka = KafkaSettings(bootstrap_servers=servers)
    lines = [to_json(e).encode() for e in generate_day(8, WorkloadShape(orders=200, skus=20, bad_events=0))]
    half = len(lines) // 2
    asyncio.run(produce(lines[:half], kafka, topics))
    env = {**os.environ, "BACKORDERS_TOPIC_ORDERS": topics.orders, "BACKORDERS_TOPIC_INVENTORY": topics.inventory,
           "BACKORDERS_TOPIC_REFERENCE": topics.reference, "BACKORDERS_TOPIC_COMMANDS": topics.commands,
           "KAFKA_BOOTSTRAP_SERVERS": servers}
    command = [*BACKORDERS, "worker", "recalculator", "--db", url, "--schema", schema,
               "--recalc-every-minutes", "0", "--metrics-port", "0"]

    def start(name: str) -> tuple[subprocess.Popen, object]:
        log = (tmp_path / name).open("wb")
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log), log

    worker = None
    try:
        # The broker is away when the worker starts.
        broker("stop", servers)
        try:
            worker, log = start("no-broker.log")
            time.sleep(6)
            assert worker.poll() is None, (tmp_path / "no-broker.log").read_text()[-2000:]
            assert b"start_waiting" in (tmp_path / "no-broker.log").read_bytes()
        finally:
            broker("start", servers)
        wait_until(lambda: handled(url, schema) >= half, "the first half was handled", deadline=120)

        # A stop request while it waits for the database.
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        postgres("stop")
        try:
            waiting, _ = start("no-database-stopped.log")
            time.sleep(4)
            assert waiting.poll() is None
            waiting.send_signal(signal.SIGTERM)
            assert waiting.wait(timeout=15) == 0, "a worker waiting for the database did not stop cleanly"

            # The database is away when the worker starts, and comes back.
            worker, log = start("no-database.log")
            time.sleep(5)
            assert worker.poll() is None, (tmp_path / "no-database.log").read_text()[-2000:]
            assert b"start_waiting" in (tmp_path / "no-database.log").read_bytes()
        finally:
            postgres("start")
        asyncio.run(produce(lines[half:], kafka, topics))
        wait_until(lambda: handled(url, schema) >= len(lines), "every input was handled", deadline=120)
        assert worker.poll() is None
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
        asyncio.run(_drop_schema(url, schema))
