"""faust-streaming may commit offsets past records it never handed over; a consumer built on
`faust_support` resumes from the offset stored with its state instead."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata
from integration.conftest import kafka_bootstrap


async def prepare(servers: str, topic: str, group: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=servers)
    await producer.start()
    try:
        for n in range(100):
            await producer.send(topic, f"v{n}".encode(), partition=0)
        await producer.flush()
    finally:
        await producer.stop()
    # The group's committed offset is 80: as if faust had committed past 30 records that
    # were never handled (the state holds 0..49).
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.commit({tp: OffsetAndMetadata(80, "")})
    finally:
        await consumer.stop()


def test_a_consumer_resumes_from_its_stored_offset_not_from_faust_commits(tmp_path):
    servers = kafka_bootstrap()
    suffix = uuid.uuid4().hex[:8]
    topic, app_id = f"probe.{suffix}", f"probe-{suffix}"
    db = tmp_path / "probe.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("create table seen (value text)")
        conn.execute("create table positions (source text primary key, position integer)")
        conn.executemany("insert into seen values (?)", [(f"v{n}",) for n in range(50)])
        conn.execute("insert into positions values (?, 49)", (f"{topic}:0",))
    asyncio.run(prepare(servers, topic, app_id))

    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": servers, "PROBE_DB": str(db), "PROBE_TOPIC": topic,
           "PROBE_APP_ID": app_id}
    log = (tmp_path / "faust.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "faust", "--datadir", str(tmp_path / "data"), "-A", "e2e.faust_probe", "worker"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=os.path.join(os.path.dirname(__file__), ".."),
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert worker.poll() is None, (tmp_path / "faust.log").read_text()[-3000:]
            with sqlite3.connect(db) as conn:
                position = conn.execute("select position from positions").fetchone()[0]
            if position == 99:
                break
            assert time.monotonic() < deadline, f"stuck at offset {position}"
            time.sleep(0.3)
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    with sqlite3.connect(db) as conn:
        seen = [row[0] for row in conn.execute("select value from seen order by rowid")]
    assert seen == [f"v{n}" for n in range(100)]  # 50..79 were not skipped, nothing twice
