"""Poison records on Kafka, against a real broker and PostgreSQL: one of each kind that once
crashed the worker, stopped its partition for good or could not be stored (an overflowing
timestamp, quantities of 2**70 and 10**30, NUL in an id and in a customer name, a huge SKU,
an oversized event, bytes that are not UTF-8, a NUL byte, a record without a value, a delta
past the stock limit) among valid records in one partition. The worker never raises nor
falls back to its last commit; each poison is a stored dead letter with its reason and its
raw input, every valid record after it is applied, and the dead letters reach their topic."""

from __future__ import annotations

import asyncio
import json
import uuid

from aiokafka import AIOKafkaProducer
from backorder_events import DeadLetter
from backorder_events.limits import MAX_DEAD_LETTER_RAW_BYTES, MAX_STOCK_QTY
from backorders_platform.kafka_settings import KafkaSettings
from integration.conftest import _drop_schema, consume_all, kafka_bootstrap, postgres_url
from integration.test_kafka_worker import create_topics
from integration.test_outbox_relay import fresh_topics
from recalculator.kafka.relay import OutboxRelay
from recalculator.kafka.worker import RecalculatorWorker
from support import created, order_lines, poison_inputs, poison_setup


async def test_poison_records_are_dead_lettered_and_the_partition_flows():
    servers, url = kafka_bootstrap(), postgres_url()
    schema = f"poison_{uuid.uuid4().hex[:10]}"
    topics = await create_topics(servers)
    outputs = await fresh_topics(servers)
    kafka = KafkaSettings(bootstrap_servers=servers)

    sequence: list[tuple[str, bytes | None, str | None]] = [("setup", poison_setup(), None)]
    poisons = [*poison_inputs(), ("a record without a value", None, "empty record: no value")]
    for n, (what, raw, reason) in enumerate(poisons):
        sequence.append((what, raw, reason))
        sequence.append(("good", json.dumps(created(f"after-{n}", [("1", "SKU-A", 1)])).encode(), None))
    expected = {offset: item for offset, item in enumerate(sequence) if item[2] is not None}

    # Compressed, the oversized records fit the broker's default record size; uncompressed
    # they are what the worker reads.
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", enable_idempotence=True,
                                compression_type="gzip", max_request_size=8 << 20)
    await producer.start()
    try:
        for _, raw, _ in sequence:  # all in one partition of the orders topic, in this order
            key = b"tombstone" if raw is None else None  # a record needs a key or a value
            await producer.send_and_wait(topics.orders, raw, key=key, partition=0)
    finally:
        await producer.stop()

    try:
        async with RecalculatorWorker(url, schema=schema, kafka=kafka, topics=topics, batch_size=3) as worker:
            stop = asyncio.Event()
            running = asyncio.create_task(worker.run(stop))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 90
            while (await worker.runtime.repository.positions()).get(f"{topics.orders}:0") != len(sequence) - 1:
                assert not running.done(), running.exception() if running.done() else None
                assert loop.time() < deadline, "the partition stopped"
                await asyncio.sleep(0.1)
            stop.set()
            await asyncio.wait_for(running, 30)  # raises what the worker raised, if anything
            # Never a failed batch (a poison the database refuses sends the worker back to its
            # last commit, and to the same poison, for ever).
            assert worker.recoveries == 0
            repository = worker.runtime.repository
            dead = await repository.dead_letter_records()
            engine = worker.runtime.engine
            for n in range(len(poisons)):
                assert order_lines(engine, f"after-{n}") == {"1": 1}, n
            assert engine.stock["SKU-P"]["W1"] == MAX_STOCK_QTY
            async with OutboxRelay(repository, kafka, outputs) as relay:
                await relay.relay_all()

        assert sorted(d.position for d in dead) == sorted(expected)
        for letter in dead:
            what, raw, reason = expected[letter.position]
            assert reason in letter.reason, (what, letter.reason)
            assert (letter.source, letter.partition) == (topics.orders, 0)
            raw = raw or b""
            if len(raw) > MAX_DEAD_LETTER_RAW_BYTES:
                assert letter.raw_size == len(raw) and raw.startswith(letter.original()), what
            else:
                assert letter.original() == raw and letter.raw_size is None, what

        # Each dead letter made it to the dead-letter topic, under the broker's record size.
        letters = await consume_all(servers, [outputs.dead_letters], len(dead))
        published = [DeadLetter.model_validate_json(r.value) for r in letters]
        assert [p.position for p in published] == [d.position for d in dead]
        assert published == dead
        assert all(len(r.value) < 1_000_000 for r in letters)
        assert [dict(r.headers)["dlq_reason"].decode() for r in letters] == [d.reason for d in dead]
    finally:
        await _drop_schema(url, schema)
