"""Helpers of the notifier's and channel-sync's intake tests: a stand-in for faust's stream,
a projection that fails, a database that is away for a while, and for the poison runs on
the real broker, topics that take large messages, a producer, stopping a worker, and the
check of the dead letters a worker listed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

BACKORDERS = [sys.executable, "-m", "backorders_app.main"]
BIG = 4 * 1024 * 1024  # what the test topics and producer allow: more than a worker takes


@dataclass
class _Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass
class _Event:
    message: _Message


class Stream:
    """What an agent reads of faust's stream: batches of events."""

    def __init__(self, *batches: list[tuple[str, int, str]]) -> None:
        self.batches = batches

    async def take_events(self, size: int, within: float):
        offsets: dict[str, int] = {}
        for batch in self.batches:
            events = []
            for topic, partition, value in batch:
                key = f"{topic}:{partition}"
                offsets[key] = offsets.get(key, -1) + 1
                events.append(_Event(_Message(topic, partition, offsets[key], None, value.encode())))
            yield events


def failing_apply(monkeypatch, owner: Any, fails: Callable[[Any, list[str]], bool],
                  error: BaseException) -> list[str]:
    """`owner.apply(..., event)` (the projection's) raises `error` for each event `fails(event,
    failed)` picks, `failed` being the ids of the events it failed on so far (returned)."""
    real = owner.apply
    failed: list[str] = []

    def apply(*args):
        event = args[-1]
        if fails(event, failed):
            failed.append(event.id)
            raise type(error)(*error.args)
        return real(*args)

    monkeypatch.setattr(owner, "apply", apply)
    return failed


def database_away(monkeypatch, store, method: str, times: int, error: BaseException) -> dict[str, int]:
    """`store.<method>` fails with `error` its first `times` calls, and the database does not
    answer (`store.reachable`) until then: an outage. Returns the count of failed calls."""
    real, real_reachable = getattr(store, method), store.reachable
    down = {"failures": 0}

    async def failing(*args, **kwargs):
        if down["failures"] < times:
            down["failures"] += 1
            raise type(error)(*error.args)  # a fresh one each time, as a real outage raises
        return await real(*args, **kwargs)

    async def reachable():
        return down["failures"] >= times and await real_reachable()

    monkeypatch.setattr(store, method, failing)
    monkeypatch.setattr(store, "reachable", reachable)
    return down


async def create_topics(servers: str, names: dict[str, int]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                            topic_configs={"max.message.bytes": str(BIG)})
                                   for name, partitions in names.items()])
    finally:
        await admin.close()


async def produce(servers: str, records: list[tuple[str, bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", enable_idempotence=True,
                                max_request_size=BIG)
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


def stop(worker: subprocess.Popen) -> None:
    """SIGTERM, and SIGKILL when the worker has not exited a minute later."""
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(60)
    except subprocess.TimeoutExpired:
        worker.kill()


def listed_dead_letters(command: list[str], env: dict) -> list[dict]:
    """The dead letters `backorders <command>` lists as JSON lines."""
    listed = subprocess.run([*BACKORDERS, *command], capture_output=True, text=True, env=env, timeout=120,
                            check=False)
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines() if line.startswith("{")]


def assert_dead_lettered(dead: list[dict], bad: list[tuple[str, bytes, bytes, str]]) -> None:
    """Each poison record `(topic, key, value, part of its reason)` has its dead letter, on its
    topic, with the raw record kept (cut at 64 KiB)."""
    assert len(dead) == len(bad)
    by_topic: dict[str, list[dict]] = {}
    for row in dead:
        by_topic.setdefault(row["source"].rsplit(":", 1)[0], []).append(row)
    for topic, _key, value, reason in bad:
        matching = [row for row in by_topic.get(topic, []) if reason in row["reason"]]
        assert matching, f"no dead letter on {topic} says {reason!r}: {[r['reason'] for r in dead]}"
        assert len(matching[0]["raw"]) <= 64 * 1024 + 100  # the raw record is kept, cut
        if len(value) < 1000:
            assert matching[0]["raw"] == value.decode("utf-8", "replace").replace("\x00", "\\x00")
