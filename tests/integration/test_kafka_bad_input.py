"""Bad input on Kafka: malformed JSON, a wrong schema, an unknown order and a repeated event
id, all in one partition between good events. Each is dead-lettered or skipped with a
reason, the partition keeps flowing, and the dead letters reach the dead-letter topic with
the raw input and where it was read."""

from __future__ import annotations

import json
import uuid

from aiokafka import AIOKafkaProducer
from backorders_platform.kafka_settings import KafkaSettings
from integration.conftest import _drop_schema, consume_all, kafka_bootstrap, postgres_url
from integration.test_kafka_worker import create_topics
from integration.test_outbox_relay import fresh_topics
from recalculator.kafka.relay import OutboxRelay
from recalculator.kafka.worker import RecalculatorWorker
from recalculator.publishing import to_json
from support import created, event, order_lines, stock


async def test_bad_records_are_refused_with_reasons_while_the_partition_flows():
    servers, url = kafka_bootstrap(), postgres_url()
    schema = f"bad_{uuid.uuid4().hex[:10]}"
    topics = await create_topics(servers)
    outputs = await fresh_topics(servers)
    kafka = KafkaSettings(bootstrap_servers=servers)
    first = created("a1", [("1", "SKU-A", 2)])
    sequence = [
        ("good", to_json(first).encode()),
        ("malformed", b'{"specversion": "1.0", "id": "broken-1", "type": "OrderCreated", "data": {'),
        ("wrong schema", to_json(event("OrderCreated", {"order_id": "a2", "lines": "two"}, id="schema-1")).encode()),
        ("unknown order", to_json(event("OrderStatusChanged", {"order_id": "nope", "rush": True}, id="unknown-1")).encode()),
        ("duplicate", to_json(first).encode()),
        ("good", to_json(created("a3", [("1", "SKU-A", 1)])).encode()),
        ("good", to_json(stock("SKU-A", 2, recalculate=True)).encode()),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for _, raw in sequence:  # all to one partition of the orders topic, in this order
            await producer.send_and_wait(topics.orders, raw, partition=0)
    finally:
        await producer.stop()

    try:
        async with RecalculatorWorker(url, schema=schema, kafka=kafka, topics=topics) as worker:
            await worker.catch_up()
            repository = worker.runtime.repository
            dead = await repository.dead_letter_records()
            positions = await repository.positions()
            # Every record after the bad ones was applied: the partition kept flowing.
            assert positions[f"{topics.orders}:0"] == len(sequence) - 1
            assert order_lines(worker.runtime.engine, "a1") == {"1": 0}
            assert order_lines(worker.runtime.engine, "a3") == {"1": 1}
            async with OutboxRelay(repository, kafka, outputs) as relay:
                await relay.relay_all()

        reasons = {d.position: d for d in dead}
        assert sorted(reasons) == [1, 2, 3], [(d.position, d.reason) for d in dead]
        assert reasons[1].reason.startswith("not valid JSON")
        assert reasons[2].event_id == "schema-1" and "lines" in reasons[2].reason
        assert reasons[3].event_id == "unknown-1" and "unknown order 'nope'" in reasons[3].reason
        for letter in dead:
            assert (letter.source, letter.partition) == (topics.orders, 0)
            assert letter.raw.encode() == sequence[letter.position][1]
        # The duplicate (offset 4) is neither applied twice nor a dead letter: it is skipped.
        assert 4 not in reasons

        letters = await consume_all(servers, [outputs.dead_letters], len(dead))
        assert [json.loads(r.value)["position"] for r in letters] == [1, 2, 3]
        assert [r.key.decode() for r in letters] == [f"{topics.orders}:0:{n}" for n in (1, 2, 3)]
        assert all(dict(r.headers)["dlq_reason"].decode() == d.reason for r, d in zip(letters, dead, strict=True))
    finally:
        await _drop_schema(url, schema)
