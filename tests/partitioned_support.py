"""A toy partitioned stage for the runner's tests: running sums per key, the state of a
partition being key → sum. Each record (key, JSON {"id", "value"}) adds its value and
records an output row with the record's id (unique: a record applied twice would fail).

Run as a script (`python partitioned_support.py URL SCHEMA SERVERS TOPIC GROUP PAUSE`), it
runs one runner until killed, each batch lingering PAUSE seconds in its transaction (the
kill test).
"""

from __future__ import annotations

import asyncio
import json
import sys

from backorders_platform.kafka_settings import KafkaSettings
from backorders_platform.partitioned import PartitionedRunner, Stage
from sqlalchemy import text

TABLES = (
    "CREATE TABLE IF NOT EXISTS toy_sums (topic TEXT, partition INT, key TEXT, total BIGINT, "
    "PRIMARY KEY (topic, partition, key))",
    "CREATE TABLE IF NOT EXISTS toy_outputs (record_id TEXT PRIMARY KEY, key TEXT, total BIGINT)",
)
# Small enough for a member's death to be seen quickly; large enough for a loaded machine.
GROUP_OPTIONS = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000, "max_poll_interval_ms": 60000}


class RunningSums(Stage):
    name = "toy_sums"

    def __init__(self, pause: float = 0.0, fail_on: set[str] = frozenset()) -> None:
        self.applied = 0
        self.pause = pause  # seconds each batch lingers in its transaction
        self.fail_on = set(fail_on)  # record ids whose first batch fails after its writes

    async def load(self, partition, conn):
        rows = await conn.execute(text("SELECT key, total FROM toy_sums WHERE topic = :t AND partition = :p"),
                                  {"t": partition.topic, "p": partition.partition})
        return {row.key: row.total for row in rows}

    async def apply(self, partition, state, records, conn):
        outputs = []
        for record in records:
            key, item = record.key.decode(), json.loads(record.value)
            state[key] = state.get(key, 0) + item["value"]
            outputs.append({"id": item["id"], "key": key, "total": state[key]})
        await conn.execute(text("INSERT INTO toy_outputs (record_id, key, total) VALUES (:id, :key, :total)"),
                           outputs)
        touched = {o["key"] for o in outputs}
        await conn.execute(
            text("INSERT INTO toy_sums (topic, partition, key, total) VALUES (:t, :p, :k, :v) "
                 "ON CONFLICT (topic, partition, key) DO UPDATE SET total = EXCLUDED.total"),
            [{"t": partition.topic, "p": partition.partition, "k": k, "v": state[k]} for k in touched],
        )
        failing = self.fail_on & {o["id"] for o in outputs}
        if failing:
            self.fail_on -= failing
            raise RuntimeError(f"failing the batch of {sorted(failing)}")
        if self.pause:
            await asyncio.sleep(self.pause)
        self.applied += len(records)


def runner(db, servers: str, topic: str, group: str, stage: RunningSums | None = None) -> PartitionedRunner:
    return PartitionedRunner(stage or RunningSums(), db, KafkaSettings(bootstrap_servers=servers), [topic],
                             group, batch_size=50, consumer_options=GROUP_OPTIONS)


async def _main(url: str, schema: str, servers: str, topic: str, group: str, pause: str) -> None:
    from backorders_platform.database import make_engine

    db = make_engine(url, schema)
    await runner(db, servers, topic, group, RunningSums(pause=float(pause))).run(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(_main(*sys.argv[1:7]))
