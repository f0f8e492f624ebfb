"""The worker's Prometheus endpoint: inputs by outcome, dead letters, lag, batch latency."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

from backorders_platform.kafka_settings import KafkaSettings
from integration.conftest import _drop_schema, kafka_bootstrap, postgres_url
from integration.test_kafka_worker import create_topics
from recalculator.cli.worker import produce
from recalculator.publishing import to_json
from support import created

BACKORDERS = [sys.executable, "-m", "backorders_app.main"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_metrics_endpoint_counts_what_the_worker_did():
    servers, url = kafka_bootstrap(), postgres_url()
    schema = f"metrics_{uuid.uuid4().hex[:10]}"
    topics = asyncio.run(create_topics(servers))
    lines = [to_json(created(f"m{n}", [("1", "X", 1)])).encode() for n in range(30)] + [b"{broken"]
    asyncio.run(produce(lines, KafkaSettings(bootstrap_servers=servers), topics))
    port = free_port()
    env = {**os.environ, "BACKORDERS_TOPIC_ORDERS": topics.orders, "BACKORDERS_TOPIC_INVENTORY": topics.inventory,
           "BACKORDERS_TOPIC_REFERENCE": topics.reference, "BACKORDERS_TOPIC_COMMANDS": topics.commands}
    worker = subprocess.Popen(
        [*BACKORDERS, "worker", "recalculator", "--db", url, "--schema", schema, "--recalc-every-minutes", "0",
         "--metrics-port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
                if sample(text, 'backorders_events_total{status="applied"}') >= 30:
                    break
            except (OSError, AssertionError):
                pass
            assert time.monotonic() < deadline, "the worker's metrics never showed the inputs"
            time.sleep(0.3)
        assert sample(text, "backorders_dead_letters_total") == 1
        assert sample(text, "backorders_published_events_total") >= 30
        assert sample(text, "backorders_batch_seconds_count") >= 1
        assert "backorders_consumer_lag{" in text and "backorders_recalculation_seconds_bucket" in text
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        asyncio.run(_drop_schema(url, schema))
