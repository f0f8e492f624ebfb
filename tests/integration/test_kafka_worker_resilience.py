"""The Kafka worker against what goes wrong around it (real broker and PostgreSQL): a
deposed owner writing while a new one starts, a record that makes the engine fail, a
broker that is away when the periodic recalculation starts, commands on several orders
published before their orders or dated before them, and the memory of a reloaded state."""

from __future__ import annotations

import asyncio
import gc
import json
import uuid
import weakref

from backorders_platform.kafka_settings import KafkaSettings
from backorders_workload import WorkloadShape, generate_day
from integration.conftest import _drop_schema, kafka_bootstrap, postgres_url
from integration.test_kafka_worker import create_topics, drain
from recalculator.cli.worker import produce
from recalculator.domain.engine import Engine
from recalculator.kafka.worker import RecalculatorWorker
from recalculator.publishing import to_json
from recalculator.runtime.embedded import EmbeddedRuntime
from support import created, event, order_lines, published


async def test_a_new_owner_claims_the_state_before_loading_it():
    """Worker A lost its lock unnoticed and keeps committing; worker B starts. Had B loaded
    the state before claiming it, a batch A committed in between would be missing from B's
    engine while its positions are stored: B would go on without it."""
    servers, url = kafka_bootstrap(), postgres_url()
    schema = f"claim_{uuid.uuid4().hex[:10]}"
    topics = await create_topics(servers)
    kafka = KafkaSettings(bootstrap_servers=servers)
    lines = [to_json(e).encode() for e in generate_day(5, WorkloadShape(orders=120, skus=12, bad_events=0))]
    first = second = None
    try:
        await produce(lines[:80], kafka, topics)
        first = await RecalculatorWorker(url, schema=schema, kafka=kafka, topics=topics, batch_size=20).start()
        await drain(first)
        await first._release_lock()  # lost, as when PostgreSQL restarts under it
        await produce(lines[80:], kafka, topics)

        second = RecalculatorWorker(url, schema=schema, kafka=kafka, topics=topics, batch_size=20)
        repository = second.runtime.repository
        load = repository.load

        async def load_while_the_old_owner_writes(engine):
            await load(engine)
            try:  # the deposed worker commits a batch right after the new one read the state
                for _ in range(20):
                    if await first.poll_once():
                        break
            except Exception:  # noqa: BLE001 - fenced out: what a claim made first gives
                pass

        repository.load = load_while_the_old_owner_writes
        await second.start()
        repository.load = load
        async with EmbeddedRuntime(url, schema=schema) as stored:
            assert published(second.runtime.engine) == published(stored.engine)
            assert second.runtime.engine.processed == stored.engine.processed
    finally:
        for worker in (first, second):
            if worker is not None:
                await worker.stop()
        await _drop_schema(url, schema)


async def test_a_record_that_keeps_failing_is_dead_lettered_with_its_traceback_and_the_rest_flows(monkeypatch):
    servers, url = kafka_bootstrap(), postgres_url()
    schema = f"poison_{uuid.uuid4().hex[:10]}"
    topics = await create_topics(servers)
    kafka = KafkaSettings(bootstrap_servers=servers)
    original = Engine._item_added

    def failing(self, data, now):  # a defect that only this order's lines meet
        if data.order_id == "cursed":
            raise ZeroDivisionError("a defect in the engine")
        return original(self, data, now)

    monkeypatch.setattr(Engine, "_item_added", failing)
    log = [
        created("cursed", [("1", "SKU-A", 1)], time="2025-04-30T10:00:00Z"),
        created("fine", [("1", "SKU-A", 1)], time="2025-04-30T10:00:01Z"),
        event("ItemAdded", {"order_id": "cursed", "line": {"line_id": "2", "sku": "SKU-B", "qty": 1}},
              time="2025-04-30T10:00:02Z", id="the-cursed-one"),
        event("ItemAdded", {"order_id": "fine", "line": {"line_id": "2", "sku": "SKU-B", "qty": 3}},
              time="2025-04-30T10:00:03Z"),
    ]
    await produce([to_json(e).encode() for e in log], kafka, topics)
    worker = RecalculatorWorker(url, schema=schema, kafka=kafka, topics=topics, max_attempts=3)
    await worker.start()
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        for _ in range(200):
            if "fine" in worker.runtime.engine.orders and "2" in worker.runtime.engine.orders["fine"].lines:
                break
            assert not running.done(), running
            await asyncio.sleep(0.1)
        assert order_lines(worker.runtime.engine, "fine") == {"1": 1, "2": 3}
        assert order_lines(worker.runtime.engine, "cursed") == {"1": 1}
        assert worker.recoveries == 3 and not running.done()
        [letter] = await worker.runtime.repository.dead_letter_records()
        assert letter.event_id == "the-cursed-one" and letter.source == topics.orders
        assert letter.reason.startswith("unexpected error after 3 attempts: ZeroDivisionError: a defect")
        assert "Traceback" in letter.reason and "in failing" in letter.reason
    finally:
        stop.set()
        await running
        await worker.stop()
        await _drop_schema(url, schema)


async def test_commands_on_several_orders_wait_for_their_orders_whatever_the_topic():
    """MarkBackorder on two orders goes to the commands topic; published before the orders'
    OrderCreated (another partition, another topic), it still applies after them, as in the
    log's time order."""
    servers, url = kafka_bootstrap(), postgres_url()
    schema = f"multi_{uuid.uuid4().hex[:10]}"
    topics = await create_topics(servers)
    kafka = KafkaSettings(bootstrap_servers=servers)
    mark = event("MarkBackorder", {"order_ids": ["m1", "m2"]}, time="2025-04-30T10:00:05Z", id="mark")
    orders = [created(o, [("1", "SKU-M", 1)], time="2025-04-30T10:00:00Z") for o in ("m1", "m2")]
    stock = event("InventoryAdjusted", {"sku": "SKU-M", "warehouse_id": "W1", "set_to": 5, "recalculate": True},
                  time="2025-04-30T09:00:00Z")
    await produce([to_json(mark).encode()], kafka, topics)  # first in, on the commands topic
    await asyncio.sleep(0.5)
    await produce([to_json(e).encode() for e in (stock, *orders)], kafka, topics)
    try:
        async with RecalculatorWorker(url, schema=schema, kafka=kafka, topics=topics) as worker:
            await drain(worker)
            assert not await worker.runtime.repository.dead_letter_records()
            assert order_lines(worker.runtime.engine, "m1") == {"1": 1}
            assert order_lines(worker.runtime.engine, "m2") == {"1": 1}
    finally:
        await _drop_schema(url, schema)


async def test_a_command_dated_before_its_orders_is_held_then_applied_as_replay_does(tmp_path):
    """MarkBackorder on two orders, stamped (by the operator's clock) before the order
    system's OrderCreated of both: the worker holds it until both exist, then applies it, and
    publishes exactly what `backorders replay` of the same events publishes, across a restart
    while it waits."""
    from recalculator.adapters import tables as t
    from recalculator.cli.replay import replay

    servers, url = kafka_bootstrap(), postgres_url()
    schema = f"held_{uuid.uuid4().hex[:10]}"
    topics = await create_topics(servers)
    kafka = KafkaSettings(bootstrap_servers=servers)
    log = [
        event("InventoryAdjusted", {"sku": "SKU-H", "warehouse_id": "W1", "set_to": 5, "recalculate": True},
              time="2025-04-30T09:00:00Z", id="stock-h"),
        event("MarkBackorder", {"order_ids": ["h1", "h2"]}, time="2025-04-30T10:00:00Z", id="mark-h"),
        created("h1", [("1", "SKU-H", 1)], time="2025-04-30T10:00:02Z"),
        created("h2", [("1", "SKU-H", 2)], time="2025-04-30T10:00:04Z"),
    ]
    lines = [to_json(e).encode() for e in log]
    await produce(lines, kafka, topics)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(line + b"\n" for line in lines))
    out, dlq = tmp_path / "out.jsonl", tmp_path / "dlq.jsonl"
    replay(str(events), str(out), str(dlq))
    try:
        async with RecalculatorWorker(url, schema=schema, kafka=kafka, topics=topics, batch_size=1) as worker:
            for _ in range(200):  # one record a batch, until the mark waits, with h1 known
                await worker.poll_once()
                if "h1" in worker.runtime.engine.orders:
                    break
            assert list(worker.runtime.engine.waiting) == [("/tests", "mark-h")]
            assert "h2" not in worker.runtime.engine.orders
        # A restart while it waits: the next worker takes it from the stored state.
        async with RecalculatorWorker(url, schema=schema, kafka=kafka, topics=topics, batch_size=1) as worker:
            assert list(worker.runtime.engine.waiting) == [("/tests", "mark-h")]
            await drain(worker)
            engine = worker.runtime.engine
            assert not engine.waiting and ("/tests", "mark-h") in engine.processed
            assert order_lines(engine, "h1") == {"1": 1} and order_lines(engine, "h2") == {"1": 2}
            assert not await worker.runtime.repository.dead_letter_records()
            async with worker.runtime.db.connect() as conn:
                rows = await conn.execute(t.outbox.select().order_by(t.outbox.c.seq))
                outbox = [row.payload for row in rows]
        assert dlq.read_text() == ""
        assert outbox == out.read_text().splitlines()
        manual = [json.loads(p)["subject"] for p in outbox if json.loads(p)["data"].get("cause_id") == "mark-h"]
        assert manual[:2] == ["h1", "h2"]
    finally:
        await _drop_schema(url, schema)


async def test_the_periodic_recalculation_waits_for_a_broker_away_at_its_start():
    servers, url = kafka_bootstrap(), postgres_url()
    schema = f"sched_{uuid.uuid4().hex[:10]}"
    topics = await create_topics(servers)
    host, port = servers.rsplit(":", 1)
    # The scheduler is pointed at an address where, at first, no broker answers; later a
    # forwarder to the real broker opens there (as a broker coming back).
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    away = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    worker = RecalculatorWorker(url, schema=schema, kafka=KafkaSettings(bootstrap_servers=servers),
                                topics=topics, recalc_every_seconds=1)
    worker.kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{away}", client_id="scheduler")
    stop = asyncio.Event()
    scheduler = asyncio.create_task(worker._schedule_recalculations(stop))
    forwarder = None
    try:
        await asyncio.sleep(3)
        assert not scheduler.done(), scheduler  # it used to end here, silently, for good

        async def forward(reader, writer):
            upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))

            async def pipe(source, target):
                try:
                    while data := await source.read(65536):
                        target.write(data)
                        await target.drain()
                finally:
                    target.close()

            await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer),
                                 return_exceptions=True)

        forwarder = await asyncio.start_server(forward, "127.0.0.1", away)
        async with RecalculatorWorker(url, schema=schema, kafka=KafkaSettings(bootstrap_servers=servers),
                                      topics=topics) as reader:
            for _ in range(100):
                await reader.poll_once()
                if any(e.startswith("periodic-") for _, e in reader.runtime.engine.processed):
                    break
            assert any(e.startswith("periodic-") for _, e in reader.runtime.engine.processed)
    finally:
        stop.set()
        await asyncio.gather(scheduler, return_exceptions=True)
        if forwarder is not None:
            forwarder.close()
        await _drop_schema(url, schema)


async def test_a_reloaded_state_lets_the_old_one_go(database):
    url, schema = database
    events = generate_day(3, WorkloadShape(orders=50, skus=8, bad_events=0))
    async with EmbeddedRuntime(url, schema=schema) as runtime:
        await runtime.consume("day", [(n, json.dumps(e)) for n, e in enumerate(events, 1)])
        await runtime.reload()  # the loaded state is kept out of the collector's reach
        old = weakref.ref(runtime.engine)
        await runtime.reload()  # after a failed batch: a new engine
        gc.collect()
        assert old() is None, "the engine loaded before is still in memory"
    gc.unfreeze()


async def test_an_instant_longer_than_the_batches_is_fetched_whole():
    """Sixty records of one instant on one partition, batches of five: the partition holds
    far more than flow control lets a waiting partition hold, yet it must be fetched on,
    since the instant is complete only once its end is seen."""
    servers, url = kafka_bootstrap(), postgres_url()
    schema = f"instant_{uuid.uuid4().hex[:10]}"
    topics = await create_topics(servers)
    kafka = KafkaSettings(bootstrap_servers=servers)
    same_instant = [created(f"i{n}", [("1", "SKU-I", 1)], time="2025-04-30T10:00:00Z") for n in range(60)]
    await produce([to_json(e).encode() for e in same_instant], kafka, topics)
    try:
        async with RecalculatorWorker(url, schema=schema, kafka=kafka, topics=topics, batch_size=5) as worker:
            await asyncio.wait_for(drain(worker), 60)
            assert len(worker.runtime.engine.orders) == 60
    finally:
        await _drop_schema(url, schema)
