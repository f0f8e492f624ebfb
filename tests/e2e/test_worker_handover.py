"""Workers 1 → 2 → 1 while a workload streams in: a second worker started next to the
active one waits as a standby; when the active one is stopped (SIGTERM) the standby takes
over where the last commit left off. Then the other way round. Nothing lost, nothing
applied twice, no output id twice, and the final state equals `replay` of the same log."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
import uuid

from backorders_platform.kafka_settings import KafkaSettings
from backorders_workload import WorkloadShape
from e2e.test_worker_crash import BACKORDERS, counts, handled, recalculate_once_consumed
from integration.conftest import _drop_schema, day_and_expected, kafka_bootstrap, postgres_url
from integration.test_kafka_worker import create_topics
from recalculator.cli.worker import produce
from recalculator.runtime.embedded import EmbeddedRuntime
from support import published


def progresses(url: str, schema: str, beyond: int, deadline: float = 60) -> bool:
    """Whether more than `beyond` inputs are handled within `deadline` seconds (a worker
    starting on a busy machine takes a few)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if handled(url, schema) > beyond:
            return True
        time.sleep(0.1)
    return False


def test_workers_one_two_one_while_the_workload_streams_in():
    servers, url = kafka_bootstrap(), postgres_url()
    schema = f"handover_{uuid.uuid4().hex[:10]}"
    topics = asyncio.run(create_topics(servers))
    kafka = KafkaSettings(bootstrap_servers=servers)
    lines, final, expected = day_and_expected(31, WorkloadShape(orders=6000, skus=300))
    env = {**os.environ, "BACKORDERS_TOPIC_ORDERS": topics.orders, "BACKORDERS_TOPIC_INVENTORY": topics.inventory,
           "BACKORDERS_TOPIC_REFERENCE": topics.reference, "BACKORDERS_TOPIC_COMMANDS": topics.commands,
           "KAFKA_BOOTSTRAP_SERVERS": servers}
    command = [*BACKORDERS, "worker", "recalculator", "--db", url, "--schema", schema, "--batch-size", "100",
               "--recalc-every-minutes", "0", "--metrics-port", "0"]

    def start():
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stream():
        for begin in range(0, len(lines), 400):
            asyncio.run(produce(lines[begin:begin + 400], kafka, topics))
            time.sleep(0.2)

    producer = threading.Thread(target=stream)
    producer.start()
    first = start()
    second = None
    try:
        assert progresses(url, schema, 0), "the first worker did not start working"
        second = start()  # 1 → 2: a standby
        time.sleep(1.0)
        assert progresses(url, schema, handled(url, schema)), "the first worker stopped working when the second came"
        first.send_signal(signal.SIGTERM)  # 2 → 1: the standby takes over
        assert first.wait(timeout=30) == 0
        at_handover = handled(url, schema)
        assert progresses(url, schema, at_handover), "the standby did not take over"
        first = start()  # 1 → 2 again, then the other one goes
        time.sleep(0.5)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
        producer.join()

        total = recalculate_once_consumed(url, schema, lines, final, kafka, topics, first)
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)

        state = asyncio.run(counts(url, schema))
        print(f"\nhand-over test: {total} inputs, handed over at {at_handover}, "
              f"{state['processed_events']} applied, {state['dead_letters']} dead-lettered, "
              f"{state['outbox']} outputs ({state['outbox_ids']} distinct ids)")
        assert state["outbox"] == state["outbox_ids"], "an output id appears twice"
        # Every input is applied once, dead-lettered once, or the one deliberate duplicate.
        assert state["processed_events"] + state["dead_letters"] + 1 == total

        async def final_state():
            async with EmbeddedRuntime(url, schema=schema) as reloaded:
                return published(reloaded.engine)

        assert asyncio.run(final_state()) == published(expected)
    finally:
        producer.join()
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
        asyncio.run(_drop_schema(url, schema))
