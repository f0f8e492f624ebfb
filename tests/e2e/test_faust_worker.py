"""The recalculator started the faust way (`faust -A recalculator.kafka.faust_app worker`)
consumes the input topics into PostgreSQL like `backorders worker recalculator`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid

from backorders_platform.kafka_settings import KafkaSettings
from backorders_workload import WorkloadShape
from e2e.test_worker_crash import counts
from integration.conftest import _drop_schema, day_and_expected, kafka_bootstrap, postgres_url
from integration.test_kafka_worker import create_topics
from recalculator.cli.worker import produce
from recalculator.runtime.embedded import EmbeddedRuntime
from support import published


def test_the_faust_entry_point_runs_the_recalculator(tmp_path):
    servers, url = kafka_bootstrap(), postgres_url()
    schema = f"faust_{uuid.uuid4().hex[:10]}"
    topics = asyncio.run(create_topics(servers))
    lines, final, expected = day_and_expected(5, WorkloadShape(orders=400, skus=30))
    kafka = KafkaSettings(bootstrap_servers=servers)
    asyncio.run(produce(lines, kafka, topics))
    env = {
        **os.environ, "KAFKA_BOOTSTRAP_SERVERS": servers, "BACKORDERS_DATABASE_URL": url,
        "BACKORDERS_SCHEMA_NAME": schema, "BACKORDERS_RECALC_EVERY_MINUTES": "0",
        "BACKORDERS_TOPIC_ORDERS": topics.orders, "BACKORDERS_TOPIC_INVENTORY": topics.inventory,
        "BACKORDERS_TOPIC_REFERENCE": topics.reference, "BACKORDERS_TOPIC_COMMANDS": topics.commands,
    }
    command = [sys.executable, "-m", "faust", "--datadir", str(tmp_path / "faust"),
               "-A", "recalculator.kafka.faust_app", "worker"]
    log = (tmp_path / "faust.log").open("w")
    worker = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)

    def wait_until_handled(total: int) -> None:
        deadline = time.monotonic() + 120
        handled = 0
        while handled < total:
            assert worker.poll() is None, (tmp_path / "faust.log").read_text()[-3000:]
            assert time.monotonic() < deadline, f"only {handled} of {total} handled"
            time.sleep(0.5)
            try:
                state = asyncio.run(counts(url, schema))
            except Exception:  # noqa: BLE001 - the schema is not there yet
                continue
            handled = sum(position + 1 for key, position in state["positions"].items() if ":" in key)

    try:
        wait_until_handled(len(lines))
        asyncio.run(produce([final], kafka, topics))  # the full recalculation, once all is in
        wait_until_handled(len(lines) + 1)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0

        async def final_state():
            async with EmbeddedRuntime(url, schema=schema) as reloaded:
                return published(reloaded.engine)

        assert asyncio.run(final_state()) == published(expected)
    finally:
        if worker.poll() is None:
            worker.kill()
        asyncio.run(_drop_schema(url, schema))
