"""The partitioned stage runner (backorders_platform.partitioned) on a real broker and
PostgreSQL, with the toy stage of running sums (tests/partitioned_support.py): one member,
two members rebalancing both ways, a fenced stale owner, a member killed mid-stream."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from backorders_platform.database import make_engine
from backorders_platform.kafka_settings import KafkaSettings
from backorders_platform.partitioned import migrate
from integration.conftest import _drop_schema, kafka_bootstrap, postgres_url
from partitioned_support import TABLES, RunningSums, runner
from recalculator.kafka.topic_admin import delete_topics
from sqlalchemy import text

PARTITIONS = 4
KEYS = 12


class Setup:
    def __init__(self, url: str, schema: str, servers: str, topic: str) -> None:
        self.url, self.schema, self.servers, self.topic = url, schema, servers, topic
        self.group = f"group-{uuid.uuid4().hex[:10]}"
        self.db = make_engine(url, schema)
        self.sent: list[tuple[str, int]] = []

    async def produce(self, count: int) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.servers, acks="all")
        await producer.start()
        try:
            for _ in range(count):
                i = len(self.sent)
                key, value = f"k{i % KEYS}", i % 7 + 1
                self.sent.append((key, value))
                await producer.send(self.topic, json.dumps({"id": f"r{i}", "value": value}).encode(),
                                    key=key.encode(), partition=(i % KEYS) % PARTITIONS)
            await producer.flush()
        finally:
            await producer.stop()

    async def applied(self) -> int:
        async with self.db.connect() as conn:
            return (await conn.execute(text("SELECT count(*) FROM toy_outputs"))).scalar_one()

    async def wait_for(self, condition, what: str, deadline: float = 90.0) -> None:
        end = time.monotonic() + deadline
        while not await condition():
            if time.monotonic() > end:
                pytest.fail(f"not reached within {deadline:.0f} s: {what}; {await self.progress()}")
            await asyncio.sleep(0.2)

    async def progress(self) -> str:
        """Where each partition stands (said when a wait fails)."""
        async with self.db.connect() as conn:
            rows = await conn.execute(text("SELECT partition, epoch, owner, position FROM partition_owners "
                                           "WHERE topic = :t ORDER BY partition"), {"t": self.topic})
            applied = (await conn.execute(text("SELECT count(*) FROM toy_outputs"))).scalar_one()
        return f"{applied} of {len(self.sent)} applied, partitions {[tuple(row) for row in rows]}"

    async def wait_applied(self, count: int) -> None:
        async def reached():
            return await self.applied() >= count
        await self.wait_for(reached, f"{count} records applied")

    async def check_sums(self) -> None:
        expected = Counter()
        for key, value in self.sent:
            expected[key] += value
        async with self.db.connect() as conn:
            sums = {row.key: row.total for row in await conn.execute(text("SELECT key, total FROM toy_sums"))}
            ids = (await conn.execute(text("SELECT count(*) FROM toy_outputs"))).scalar_one()
        assert sums == dict(expected)
        assert ids == len(self.sent)  # one output per record: none lost, none applied twice


@pytest.fixture
async def setup():
    url, servers = postgres_url(), kafka_bootstrap()
    schema, topic = f"test_{uuid.uuid4().hex[:12]}", f"toy.{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        await admin.close()
    setup = Setup(url, schema, servers, topic)
    async with setup.db.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        for statement in TABLES:
            await conn.execute(text(statement))
    await migrate(setup.db)
    try:
        yield setup
    finally:
        await setup.db.dispose()
        await _drop_schema(url, schema)
        await delete_topics(KafkaSettings(bootstrap_servers=servers), [topic])


def started(member, stop: asyncio.Event) -> asyncio.Task:
    return asyncio.create_task(member.run(stop))


async def stopped(task: asyncio.Task, stop: asyncio.Event) -> None:
    stop.set()
    await asyncio.wait_for(task, 60)


async def test_one_member_applies_every_record_once(setup):
    await setup.produce(800)
    member, stop = runner(setup.db, setup.servers, setup.topic, setup.group), asyncio.Event()
    task = started(member, stop)
    try:
        await setup.wait_applied(800)
        assert len(member.owned) == PARTITIONS
    finally:
        await stopped(task, stop)
    await setup.check_sums()


async def test_members_joining_and_leaving_share_the_partitions(setup):
    await setup.produce(600)
    first, first_stop = runner(setup.db, setup.servers, setup.topic, setup.group), asyncio.Event()
    second, second_stop = runner(setup.db, setup.servers, setup.topic, setup.group), asyncio.Event()
    first_task = started(first, first_stop)
    second_task = None
    try:
        await setup.wait_applied(1)
        second_task = started(second, second_stop)
        await setup.produce(600)

        async def shared():
            return first.owned and second.owned and len(first.owned) + len(second.owned) == PARTITIONS
        await setup.wait_for(shared, "the partitions shared by both members")
        await setup.produce(600)
        await stopped(first_task, first_stop)  # leaves the group: the second takes all

        async def all_second():
            return len(second.owned) == PARTITIONS
        await setup.wait_for(all_second, "every partition with the second member")
        await setup.produce(600)
        await setup.wait_applied(len(setup.sent))
    finally:
        first_stop.set()
        if second_task is not None:
            await stopped(second_task, second_stop)
        await asyncio.wait_for(first_task, 60)
    await setup.check_sums()


async def test_a_stale_owner_is_fenced_out_and_keeps_running(setup):
    await setup.produce(KEYS * 10)
    member, stop = runner(setup.db, setup.servers, setup.topic, setup.group), asyncio.Event()
    task = started(member, stop)
    try:
        await setup.wait_applied(KEYS * 10)
        # Another member claims partition 0 (as the runner's own claim does).
        async with setup.db.begin() as conn:
            await conn.execute(text("UPDATE partition_owners SET epoch = epoch + 1, owner = 'other' "
                                    "WHERE topic = :t AND partition = 0"), {"t": setup.topic})
        async with setup.db.connect() as conn:
            before = (await conn.execute(text(
                "SELECT position FROM partition_owners WHERE topic = :t AND partition = 0"),
                {"t": setup.topic})).scalar_one()
        await setup.produce(KEYS * 10)  # to every partition, 0 included

        async def refused():
            return member.fenced >= 1
        await setup.wait_for(refused, "a batch of partition 0 refused")
        # The other partitions go on; partition 0 wrote nothing, not even its position.
        await setup.wait_applied(KEYS * 10 + KEYS * 10 * 3 // 4)
        assert not task.done()
        assert TopicPartition(setup.topic, 0) not in member.owned
        async with setup.db.connect() as conn:
            written = (await conn.execute(text("SELECT count(*) FROM toy_outputs"))).scalar_one()
            after = (await conn.execute(text(
                "SELECT position FROM partition_owners WHERE topic = :t AND partition = 0"),
                {"t": setup.topic})).scalar_one()
        assert written == KEYS * 10 + KEYS * 10 * 3 // 4
        assert after == before
    finally:
        await stopped(task, stop)


async def test_a_member_killed_mid_stream_is_taken_over(setup):
    await setup.produce(3000)
    script = Path(__file__).parents[1] / "partitioned_support.py"
    # Each batch lingers 50 ms in its transaction: the kill most likely lands in one.
    process = subprocess.Popen(
        [sys.executable, str(script), setup.url, setup.schema, setup.servers, setup.topic, setup.group,
         "0.05"],
        env={**os.environ},
    )
    try:
        await setup.wait_applied(1)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    killed_at = await setup.applied()
    await setup.produce(500)
    # The survivor gets the partitions once the broker has given up on the dead member.
    member, stop = runner(setup.db, setup.servers, setup.topic, setup.group), asyncio.Event()
    task = started(member, stop)
    try:
        await setup.wait_applied(len(setup.sent))
    finally:
        await stopped(task, stop)
    assert killed_at < len(setup.sent)
    await setup.check_sums()


async def test_a_failed_batch_is_rolled_back_and_applied_again(setup):
    await setup.produce(400)
    stage = RunningSums(fail_on={"r5", "r150", "r399"})
    member, stop = runner(setup.db, setup.servers, setup.topic, setup.group, stage), asyncio.Event()
    task = started(member, stop)
    try:
        await setup.wait_applied(400)
        assert stage.fail_on == set()  # each failed once, after writing what it then rolled back
        assert not task.done()
    finally:
        await stopped(task, stop)
    await setup.check_sums()
