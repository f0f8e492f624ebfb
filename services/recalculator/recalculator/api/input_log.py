"""Where the API publishes what it accepts (actions, corrected dead letters): the runtime's
input log, never the state. On Kafka, the input topic and key `InputTopics.route` gives
(as `backorders produce` does); on the embedded runtime, a JSON-lines file that the
runtime applies as it applies any log (`backorders run FILE`, or the server itself with
`--apply`, runtime/followed_log.py). Replaying the log therefore gives the state again."""

from __future__ import annotations

import asyncio
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from backorder_events.topics import InputTopics
from backorders_platform.kafka_settings import KafkaSettings


class LogUnavailable(Exception):
    """The log did not take the event (the broker or the file is away): nothing was
    published, or it may have been; publishing the same event id again is safe, since the
    runtime applies an id once."""


@dataclass(frozen=True)
class Appended:
    """Where an event went: a topic partition and offset, or a file line."""

    log: str  # "kafka" or "file"
    where: str  # the topic, or the file
    key: str | None = None
    partition: int | None = None
    position: int | None = None  # the offset, or the line


class InputLog(Protocol):
    async def append(self, raw: bytes, event: dict) -> Appended: ...

    async def close(self) -> None: ...


class KafkaInputLog:
    """The input topics: each event to its topic with its key, acknowledged by every
    in-sync replica (an idempotent producer, started at the first event)."""

    def __init__(self, kafka: KafkaSettings | None = None, topics: InputTopics | None = None,
                 timeout_ms: int = 15_000) -> None:
        self.kafka = kafka or KafkaSettings()
        self.topics = topics or InputTopics()
        self.timeout_ms = timeout_ms
        self._producer = None
        self._starting = asyncio.Lock()

    async def _started(self):
        from aiokafka import AIOKafkaProducer

        async with self._starting:
            if self._producer is None:
                producer = AIOKafkaProducer(**self.kafka.client_options(), acks="all", enable_idempotence=True,
                                            request_timeout_ms=self.timeout_ms)
                try:
                    await asyncio.wait_for(producer.start(), self.timeout_ms / 1000)
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
        return self._producer

    async def append(self, raw: bytes, event: dict) -> Appended:
        from aiokafka.errors import KafkaError

        topic, key = self.topics.route(event)
        try:
            producer = await self._started()
            sent = await asyncio.wait_for(
                producer.send_and_wait(topic, value=raw, key=None if key is None else key.encode()),
                self.timeout_ms / 1000)
        except (KafkaError, OSError, TimeoutError) as error:
            raise LogUnavailable(f"the broker did not take the event ({error.__class__.__name__})") from None
        return Appended("kafka", topic, key, sent.partition, sent.offset)

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


class FileInputLog:
    """The embedded runtime's log: one JSON event per line, appended under an exclusive
    lock of the file (other processes appending wait for it) and flushed to the disk before
    the event is said to be accepted. A line's number is its position in the log, the one
    `backorders run FILE` stores for it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = asyncio.Lock()

    async def append(self, raw: bytes, event: dict) -> Appended:
        if b"\n" in raw or b"\r" in raw:
            raise ValueError("an event of the log is one line")
        async with self._lock:
            try:
                line = await asyncio.to_thread(self._append, raw)
            except OSError as error:
                raise LogUnavailable(f"the log file cannot be written ({error.strerror or error})") from None
        return Appended("file", str(self.path), None, None, line)

    def _append(self, raw: bytes) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.seek(0)
                lines, last = 0, b"\n"
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    lines += chunk.count(b"\n")
                    last = chunk[-1:]
                prefix = b"" if last == b"\n" else b"\n"  # a last line left unfinished stays its own
                lines += 0 if last == b"\n" else 1
                handle.write(prefix + raw + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
                return lines + 1
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    async def close(self) -> None:
        return None
