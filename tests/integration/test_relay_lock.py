"""One relay at a time per outbox, and a stored position that never moves back, against a
real Kafka broker and PostgreSQL (SQLite for the position alone): a second relay waits as a
standby while the first runs, sends nothing, and takes over when the first stops; a relay
that stores an older position after a newer one was stored leaves the newer one."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest
from backorders_platform.database import make_engine
from backorders_platform.kafka_settings import KafkaSettings
from backorders_platform.migrations import drop_schema
from integration.conftest import consume_all, kafka_bootstrap, postgres_url
from integration.test_outbox_relay import fresh_topics
from recalculator.adapters.repository import Repository
from recalculator.kafka.relay import DEAD_LETTER_RELAY_SOURCE, RELAY_SOURCE, OutboxRelay
from recalculator.publishing import to_json
from recalculator.runtime.embedded import EmbeddedRuntime, Record
from support import created


def batch(first: int, count: int) -> list[Record]:
    """Inputs that each publish events: orders on a SKU without stock."""
    return [Record("log", n, to_json(created(f"o{n}", [("1", f"sku-{n % 7}", 1)], time="2025-04-30T15:19:00Z")))
            for n in range(first, first + count)]


async def test_the_stored_position_never_moves_back(database):
    db = make_engine(database.url, database.schema)
    try:
        repository = Repository(db, database.schema)
        await repository.create_schema()
        assert await repository.save_position(RELAY_SOURCE, 100) == 100
        # A slow relay stores the position of a batch older than the one stored meanwhile.
        assert await repository.save_position(RELAY_SOURCE, 40) == 100
        assert await repository.position(RELAY_SOURCE) == 100
        assert await repository.save_position(RELAY_SOURCE, 160) == 160
        assert await repository.position(RELAY_SOURCE) == 160
        assert await repository.save_position(DEAD_LETTER_RELAY_SOURCE, 3) == 3  # each source its own
    finally:
        await db.dispose()


async def test_a_relay_behind_another_one_does_not_move_the_position_back(database):
    """Two relays of one SQLite outbox (no lock there) or one after the other on PostgreSQL:
    the one that read its position first and sends later never lowers what the other stored."""
    servers = kafka_bootstrap()
    topics = await fresh_topics(servers)
    kafka = KafkaSettings(bootstrap_servers=servers)
    async with EmbeddedRuntime(database.url, schema=database.schema) as runtime:
        await runtime.handle_batch(batch(1, 30))
        last = (await runtime.repository.outbox_rows(0, 10_000))[-1].seq
        slow = OutboxRelay(runtime.repository, kafka, topics, batch_size=10)
        fast = OutboxRelay(Repository(runtime.db, database.schema), kafka, topics, batch_size=1000)
        async with slow, fast:
            await slow._position(RELAY_SOURCE)  # the slow one read where it was
            assert await fast.relay_all() > 0  # then the fast one sent everything
            if database.schema is None:  # SQLite: no lock, the slow one sends an old batch again
                assert await slow.relay_batch() > 0
            else:  # its lock gone, the slow one takes it and reads the position again
                await fast.stop()
                assert await slow.relay_batch() == 0
            assert await runtime.repository.position(RELAY_SOURCE) == last


async def test_one_relay_at_a_time_and_the_standby_takes_over():
    servers, url = kafka_bootstrap(), postgres_url()
    schema = f"relaylock_{uuid.uuid4().hex[:10]}"
    topics = await fresh_topics(servers)
    kafka = KafkaSettings(bootstrap_servers=servers)
    try:
        async with EmbeddedRuntime(url, schema=schema) as runtime:
            stored = runtime.repository

            async def wait_for_position(seq: int, what: str) -> None:
                for _ in range(300):
                    if (await stored.position(RELAY_SOURCE) or 0) >= seq:
                        return
                    await asyncio.sleep(0.05)
                pytest.fail(f"{what}: the outbox was not relayed up to {seq}")

            async def last_seq() -> int:
                return (await stored.outbox_rows(0, 100_000))[-1].seq

            seen: list[int] = []

            async def watch(stop: asyncio.Event) -> None:
                while not stop.is_set():
                    seen.append(await stored.position(RELAY_SOURCE) or 0)
                    await asyncio.sleep(0.01)

            # Two relays, each with its own engine, as two processes would have.
            engines = [make_engine(url, schema) for _ in range(2)]
            first = OutboxRelay(Repository(engines[0], schema), kafka, topics, batch_size=20)
            second = OutboxRelay(Repository(engines[1], schema), kafka, topics, batch_size=20)
            stops = [asyncio.Event() for _ in range(3)]
            await runtime.handle_batch(batch(1, 40))
            await first.start()
            running = asyncio.create_task(first.run(stops[0], idle_seconds=0.02))
            await wait_for_position(await last_seq(), "the first relay")
            await second.start()
            standby = asyncio.create_task(second.run(stops[1], idle_seconds=0.02))
            watching = asyncio.create_task(watch(stops[2]))
            await asyncio.sleep(1.0)
            assert not standby.done()
            # More events while both run: the active one sends them, the standby nothing.
            await runtime.handle_batch(batch(41, 40))
            await wait_for_position(await last_seq(), "both relays running")
            await asyncio.sleep(0.5)  # time enough for a second relay to send them again
            stops[0].set()
            await running
            await first.stop()
            # The standby takes over: it sends what comes next, and only that.
            await runtime.handle_batch(batch(81, 40))
            await wait_for_position(await last_seq(), "the standby")
            stops[1].set()
            stops[2].set()
            await asyncio.gather(standby, watching)
            await second.stop()
            for engine in engines:
                await engine.dispose()

            outbox = await stored.outbox_rows(0, 100_000)
            assert seen == sorted(seen), "the stored position moved back"
        topics_list = [topics.backorder_changed, topics.product_backorder_changed, topics.sku_position_changed]
        received = await consume_all(servers, topics_list, len(outbox), timeout_ms=3000)
        counts = Counter(dict(record.headers)["ce_id"].decode() for record in received)
        assert set(counts) == {row.event_id for row in outbox}
        twice = [event_id for event_id, count in counts.items() if count > 1]
        assert not twice, f"{len(twice)} events sent twice"
    finally:
        await drop_schema(url, schema)


async def test_a_waiting_relay_stops_when_asked():
    servers, url = kafka_bootstrap(), postgres_url()
    schema = f"relaystop_{uuid.uuid4().hex[:10]}"
    topics = await fresh_topics(servers)
    kafka = KafkaSettings(bootstrap_servers=servers)
    try:
        async with EmbeddedRuntime(url, schema=schema) as runtime:
            await runtime.handle_batch(batch(1, 5))
            async with OutboxRelay(runtime.repository, kafka, topics) as active:
                assert await active.relay_all() > 0  # and keeps the lock
                db = make_engine(url, schema)
                try:
                    async with OutboxRelay(Repository(db, schema), kafka, topics) as standby:
                        stop = asyncio.Event()
                        waiting = asyncio.create_task(standby.run(stop))
                        await asyncio.sleep(0.5)
                        assert not waiting.done()
                        stop.set()
                        await asyncio.wait_for(waiting, 2)
                finally:
                    await db.dispose()
    finally:
        await drop_schema(url, schema)


async def test_a_leaving_relay_does_not_wait_for_the_lock_another_one_holds():
    """A shard's stage that lost its shard relays the rest on its way out only if it holds
    the relay's lock: the worker that took the shard holds it (and relays the rest), and a
    wait for it would hold the leaving worker's shard sharing up for as long as that runs."""
    servers, url = kafka_bootstrap(), postgres_url()
    schema = f"relayleave_{uuid.uuid4().hex[:10]}"
    topics = await fresh_topics(servers)
    kafka = KafkaSettings(bootstrap_servers=servers)
    try:
        async with EmbeddedRuntime(url, schema=schema) as runtime:
            await runtime.handle_batch(batch(1, 5))
            async with OutboxRelay(runtime.repository, kafka, topics) as active:
                assert await active.relay_all() > 0  # and keeps the lock
                await runtime.handle_batch(batch(6, 5))
                db = make_engine(url, schema)
                try:
                    async with OutboxRelay(Repository(db, schema), kafka, topics) as leaving:
                        assert await asyncio.wait_for(leaving.relay_rest_if_holding(), 5) == 0
                finally:
                    await db.dispose()
                assert await active.relay_rest_if_holding() > 0  # the holder relays the rest
    finally:
        await drop_schema(url, schema)
