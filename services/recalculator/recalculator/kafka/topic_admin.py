"""Listing and deleting topics: for the test suite and the benchmark, which create topics
of their own on every run and remove them afterwards.

A broker left with thousands of leftover topics slows down for everyone using it: every
partition is metadata on its heap and an entry in its periodic checkpoints. On the local
broker that had collected some 4,500 topics from earlier runs, the latency benchmark's p99
was 350–600 ms, with the broker busy for a whole core every few seconds; on a fresh one,
130–200 ms (docs/benchmarks.md).
"""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient
from backorders_platform.kafka_settings import KafkaSettings

_DELETE_CHUNK = 200  # topics per request: one request for thousands can time out


async def topic_names(kafka: KafkaSettings) -> set[str]:
    """Every topic on the cluster, internal ones (`__consumer_offsets`, …) included."""
    admin = AIOKafkaAdminClient(**kafka.client_options(), request_timeout_ms=30_000)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def delete_topics(kafka: KafkaSettings, names) -> int:
    """Delete these topics (internal ones are never deleted); returns how many were asked.
    The broker removes their data in the background."""
    doomed = sorted(name for name in names if not name.startswith("__"))
    if not doomed:
        return 0
    admin = AIOKafkaAdminClient(**kafka.client_options(), request_timeout_ms=60_000)
    await admin.start()
    try:
        for start in range(0, len(doomed), _DELETE_CHUNK):
            await admin.delete_topics(doomed[start:start + _DELETE_CHUNK])
    finally:
        await admin.close()
    return len(doomed)
