"""The Kafka runtime reaches the state of a replay of its own topics, without any final
recalculation: a generated day streams into fresh topics of four partitions each while two
worker processes (active and standby) run, the active one is SIGKILLed three times (once
while the broker is down, so the standby takes over during the outage), the broker and
PostgreSQL are restarted; then

- `backorders replay-topics` into a fresh schema finds no order that differs,
- the live state equals `backorders replay` of the same events (one file),
- the outbox holds exactly what that replay published, in the same order, each id once,
- and every dead letter is one that replay has too.

The order of application is a function of the log (recalculator/ordering.py), so neither
the kills, nor the outages, nor how fetches interleaved can change it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from backorder_events.topics import InputTopics
from backorders_platform.kafka_settings import KafkaSettings
from backorders_workload import WorkloadShape, generate_day
from e2e.test_worker_crash import BACKORDERS, counts, handled
from integration.conftest import _drop_schema, kafka_bootstrap, postgres_url
from integration.test_kafka_worker import create_topics
from recalculator.cli.worker import produce
from recalculator.domain.engine import Engine
from recalculator.processing import process as process_input
from recalculator.publishing import to_json
from recalculator.runtime.embedded import EmbeddedRuntime
from recalculator.runtime.sequencing import in_log_order
from support import published

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PARTITIONS = 4


async def fresh_topics(servers: str) -> InputTopics:
    return await create_topics(servers, partitions=PARTITIONS)


def broker(command: str, servers: str) -> None:
    port = servers.rsplit(":", 1)[1]
    env = {**os.environ, "KAFKA_PORT": port, "KAFKA_CONTROLLER_PORT": str(int(port) + 1)}
    result = subprocess.run(["bash", str(DEPLOY / "kafka.sh"), command], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        pytest.fail(f"this test restarts the local broker (deploy/kafka.sh {command}): {result.stderr}")


def restart_postgres() -> None:
    cluster = os.environ.get("PG_CLUSTER", "main")
    result = subprocess.run(["pg_ctlcluster", "15", cluster, "restart"], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"this test restarts the local PostgreSQL 15 cluster {cluster}: {result.stderr.strip()}")


class Workers:
    """Worker processes on one state; each one's log in a file, to tell which is active."""

    def __init__(self, command: list[str], env: dict, folder: Path) -> None:
        self.command, self.env, self.folder = command, env, folder
        self.processes: list[tuple[subprocess.Popen, Path]] = []

    def start(self) -> None:
        log = self.folder / f"worker-{len(self.processes)}.log"
        with log.open("wb") as handle:
            process = subprocess.Popen(self.command, env=self.env, stdout=subprocess.DEVNULL, stderr=handle)
        self.processes.append((process, log))

    def started(self, deadline: float = 60) -> None:
        """Every live worker is past its start-up (it said something of the lock)."""
        wait_until(lambda: all(b"_lock" in log.read_bytes() for process, log in self.processes
                               if process.poll() is None), "the workers started", deadline)

    def alive(self) -> list[subprocess.Popen]:
        return [process for process, _ in self.processes if process.poll() is None]

    def active(self, deadline: float = 90) -> subprocess.Popen:
        """The live worker holding the lock: the last it said of the lock is that it took it."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            holders = []
            for process, log in self.processes:
                text = log.read_bytes()
                if process.poll() is None and text.rfind(b'"lock_acquired"') > text.rfind(b'"waiting_for_lock"'):
                    holders.append(process)
            if len(holders) == 1:
                return holders[0]
            time.sleep(0.2)
        raise AssertionError("no single active worker: " + "; ".join(
            log.read_text()[-2000:] for _, log in self.processes))

    def stop_all(self) -> list[int | None]:
        codes = []
        for process, _ in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _ in self.processes:
            try:
                codes.append(process.wait(timeout=30))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(None)
        return codes


def instant_slices(events: list[dict], lines: list[bytes], size: int) -> list[list[bytes]]:
    """The lines in slices of about `size`, each ending where the time moves on."""
    slices, current = [], []
    for n, line in enumerate(lines):
        current.append(line)
        this = events[n].get("time")
        following = events[n + 1].get("time") if n + 1 < len(events) else None
        if len(current) >= size and this and following and following > this:
            slices.append(current)
            current = []
    return [*slices, current] if current else slices


def wait_until(condition, what: str, deadline: float = 180) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, f"timed out waiting until {what}"
        time.sleep(0.3)


def test_the_live_state_is_the_replay_of_the_topics_through_kills_and_outages(tmp_path):
    servers, url = kafka_bootstrap(), postgres_url()
    schema, audit = f"order_{uuid.uuid4().hex[:10]}", f"audit_{uuid.uuid4().hex[:10]}"
    topics = asyncio.run(fresh_topics(servers))
    kafka = KafkaSettings(bootstrap_servers=servers)
    events = generate_day(47, WorkloadShape(orders=3000, skus=200))
    lines = [(e["__raw__"] if "__raw__" in e else to_json(e)).encode() for e in events]
    log = tmp_path / "day.jsonl"
    log.write_bytes(b"\n".join(lines) + b"\n")

    env = {**os.environ, "BACKORDERS_TOPIC_ORDERS": topics.orders, "BACKORDERS_TOPIC_INVENTORY": topics.inventory,
           "BACKORDERS_TOPIC_REFERENCE": topics.reference, "BACKORDERS_TOPIC_COMMANDS": topics.commands,
           "KAFKA_BOOTSTRAP_SERVERS": servers, "BACKORDERS_LOG_LEVEL": "info"}
    workers = Workers([*BACKORDERS, "worker", "recalculator", "--db", url, "--schema", schema,
                       "--batch-size", "100", "--recalc-every-minutes", "0", "--metrics-port", "0"],
                      env, tmp_path)

    produced = threading.Event()
    failures: list[BaseException] = []
    gate = threading.Lock()  # held while the broker is away: nothing is being published then

    def stream():
        """In time order, as upstream systems publish, a slice at a time; a slice never cuts
        an instant (the events of one moment are published together: docs/behaviour.md)."""
        try:
            for part in instant_slices(events, lines, 100):
                with gate:
                    asyncio.run(produce(part, kafka, topics))
                time.sleep(0.25)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            failures.append(error)
        finally:
            produced.set()

    def handled_at_least(share: float) -> None:
        wait_until(lambda: handled(url, schema) >= share * len(lines), f"{share:.0%} of the inputs were handled")

    producer = threading.Thread(target=stream)
    kills = []
    try:
        workers.start()
        workers.start()
        producer.start()
        for round_, share in enumerate((0.2, 0.45, 0.7)):
            handled_at_least(share)
            active = workers.active()
            if round_ == 1:
                with gate:
                    broker("stop", servers)  # the standby takes over while the broker is away
                    active.send_signal(signal.SIGKILL)
                    active.wait()
                    time.sleep(2)
                    broker("start", servers)
            else:
                active.send_signal(signal.SIGKILL)
                active.wait()
            kills.append(handled(url, schema))
            workers.start()  # the killed one comes back as the standby
            if round_ == 0:
                handled_at_least(0.3)
                restart_postgres()
        producer.join()
        assert not failures, failures
        wait_until(lambda: handled(url, schema) >= len(lines), "every input was handled", deadline=300)
        workers.started()
        assert len(workers.alive()) == 2, "a worker exited by itself"
        assert workers.stop_all().count(0) == 2

        state = asyncio.run(counts(url, schema))
        print(f"\nlog order test: {len(lines)} inputs, kills after {kills} handled, "
              f"{state['processed_events']} applied, {state['dead_letters']} dead-lettered, "
              f"{state['outbox']} outputs ({state['outbox_ids']} distinct ids)")
        late = [line for _, log_file in workers.processes for line in log_file.read_text().splitlines()
                if '"late_records"' in line]
        assert not late, f"records reached their partitions later than the idle bound: {late}"

        # The operator's audit: the topics replayed into a fresh schema.
        audit_run = subprocess.run(
            [*BACKORDERS, "replay-topics", "--db", url, "--into", audit, "--live-schema", schema],
            capture_output=True, text=True, env=env, timeout=300,
        )
        assert audit_run.returncode == 0, audit_run.stdout[-3000:] + audit_run.stderr[-3000:]
        assert audit_run.stdout.strip().endswith(f"0 orders differ between the live state and the replay into {audit}")

        # `backorders replay` of the same events, as one file.
        out, dead = tmp_path / "out.jsonl", tmp_path / "dead.jsonl"
        replayed = subprocess.run([*BACKORDERS, "replay", str(log), "--out", str(out), "--dead-letter", str(dead)],
                                  capture_output=True, text=True, timeout=300)
        assert replayed.returncode == 0, replayed.stderr
        expected = Engine()
        for item in in_log_order(enumerate(lines, 1)):
            process_input(expected, item.raw, "log", item.line, parsed=item.parsed)

        async def live():
            async with EmbeddedRuntime(url, schema=schema) as runtime:
                async with runtime.db.connect() as conn:
                    outbox = [row.payload for row in await conn.exec_driver_sql(
                        "select payload from outbox order by seq")]
                return runtime.engine, outbox, await runtime.repository.dead_letter_records()

        engine, outbox, dead_letters = asyncio.run(live())
        assert published(engine) == published(expected)
        assert {o.order_id: o.published_status for o in engine.orders.values()} == {
            o.order_id: o.published_status for o in expected.orders.values()}
        assert outbox == out.read_text().splitlines(), "the outbox is not what replay published"
        assert state["outbox"] == state["outbox_ids"]
        replay_dead = sorted((d["event_id"] or "", d["reason"], d["raw"])
                             for d in map(json.loads, dead.read_text().splitlines()))
        assert sorted((d.event_id or "", d.reason, d.raw) for d in dead_letters) == replay_dead
        assert len(set(kills)) == 3 and kills[-1] < len(lines), f"kills did not land mid-stream: {kills}"
    finally:
        workers.stop_all()
        producer.join()
        for name in (schema, audit):
            asyncio.run(_drop_schema(url, name))
