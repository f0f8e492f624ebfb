"""A faust app for the test of `faust_support`: appends each record's value to a SQLite
table, storing the partition's offset in the same transaction."""

from __future__ import annotations

import os
import sqlite3

from backorders_platform.faust_support import make_app, raw_topic, record_batches, seek_from_stored
from backorders_platform.kafka_settings import KafkaSettings

DB = os.environ["PROBE_DB"]
app = make_app(os.environ["PROBE_APP_ID"], KafkaSettings(), broker_commit_every=1, broker_commit_interval=0.1)
topic = raw_topic(app, os.environ["PROBE_TOPIC"])


def stored_positions() -> dict[str, int]:
    with sqlite3.connect(DB) as conn:
        return dict(conn.execute("select source, position from positions"))


async def load_positions() -> dict[str, int]:
    return stored_positions()


seek_from_stored(app, load_positions)


@app.agent(topic, concurrency=1)
async def append(stream):
    async for records in record_batches(stream, size=10, within=0.2):
        positions = stored_positions()
        with sqlite3.connect(DB) as conn:
            for record in records:
                if record.offset <= positions.get(record.position_key, -1):
                    continue  # handled before a crash
                conn.execute("insert into seen (value) values (?)", (record.value.decode(),))
                conn.execute(
                    "insert into positions values (?, ?) on conflict(source) do update set position = excluded.position",
                    (record.position_key, record.offset),
                )
