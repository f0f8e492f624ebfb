"""An action through the API on the Kafka deployment (a real broker and PostgreSQL): the
API produces the command event to the input topic `InputTopics.route` names, the
recalculator worker consumes and applies it, and the API then shows the new state, the
one a replay of the day and the action gives. The status route reads the lag from the
broker."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta

import httpx
from sqlalchemy import update
from backorders_platform.kafka_settings import KafkaSettings
from backorders_workload import WorkloadShape
from integration.conftest import _drop_schema, consume_all, day_and_expected, kafka_bootstrap, postgres_url
from recalculator.adapters import tables as t
from recalculator.adapters.codec import order_row
from recalculator.api.app import create_app
from recalculator.api.audit import audit
from recalculator.api.auth import Guard
from recalculator.api.input_log import KafkaInputLog
from recalculator.api.wiring import Services
from recalculator.cli.worker import produce
from recalculator.domain.engine import Engine
from recalculator.kafka.worker import RecalculatorWorker, lag_of
from recalculator.processing import process
from recalculator.runtime.sequencing import in_log_order
from integration.test_kafka_worker import create_topics, drain

TOKEN = "kafka-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_an_action_reaches_the_topic_the_worker_applies_it_and_the_api_shows_it():
    servers, url = kafka_bootstrap(), postgres_url()
    schema = f"api_kafka_{uuid.uuid4().hex[:10]}"
    topics = await create_topics(servers)
    kafka = KafkaSettings(bootstrap_servers=servers)
    lines, final, _ = day_and_expected(41, WorkloadShape(orders=200, skus=20))

    async def broker_lag(positions):
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(*topics.all(), **kafka.client_options(), group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            parts = [TopicPartition(t, p) for t in topics.all() for p in sorted(consumer.partitions_for_topic(t) or ())]
            return lag_of(await consumer.end_offsets(parts), positions)
        finally:
            await consumer.stop()

    services = Services(guard=Guard(TOKEN.encode()), input_log=KafkaInputLog(kafka, topics), lag=broker_lag,
                        audit=lambda: audit(url, schema, kafka=True, kafka_settings=kafka, topics=topics))
    app = create_app(url, schema, services=services)
    try:
        await produce(lines, kafka, topics)
        async with RecalculatorWorker(url, schema=schema, kafka=kafka, topics=topics, batch_size=200) as worker:
            await drain(worker)
            async with app.router.lifespan_context(app):
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
                    full = (await http.get("/orders", params={"backorder": "full", "limit": 500})).json()["items"]
                    assert len(full) >= 2
                    one, several = full[0]["order_id"], [full[1]["order_id"], full[-1]["order_id"]]
                    # After the day (an action timed within an instant the worker has passed
                    # is applied late, where a replay would place it at its time).
                    last_time = (datetime.fromisoformat(json.loads(lines[-1])["time"].replace("Z", "+00:00"))
                                 + timedelta(seconds=1)).isoformat()
                    # Refused without the token: nothing reaches the topics.
                    assert (await http.post("/actions/mark-not-backorder",
                                            json={"data": {"order_ids": [one]}})).status_code == 401
                    alone = await http.post("/actions/mark-not-backorder", headers=AUTH,
                                            json={"data": {"order_ids": [one]}, "time": last_time})
                    assert alone.status_code == 202, alone.text
                    # One order: its orders topic, keyed by it (behind its own events).
                    assert (alone.json()["topic"], alone.json()["key"]) == (topics.orders, one)
                    many = await http.post("/actions/recalculate", headers=AUTH,
                                           json={"data": {"order_ids": several}, "time": last_time})
                    assert (many.json()["topic"], many.json()["key"]) == (topics.commands, "commands")

                    status = (await http.get("/operations/status")).json()
                    assert status["lag"][f"{topics.orders}:{alone.json()['partition']}"] >= 1

                    on_topics = await consume_all(servers, topics.all(), len(lines) + 2)
                    ids = {alone.json()["event_id"], many.json()["event_id"]}
                    sent = {r.value for r in on_topics if any(f'"id":"{i}"'.encode() in r.value for i in ids)}
                    assert len(sent) == 2

                    await drain(worker)
                    expected = Engine()
                    for item in in_log_order(enumerate([*lines, *sorted(sent)], 1)):
                        process(expected, item.raw, "log", item.line, parsed=item.parsed)
                    view = (await http.get(f"/orders/{one}")).json()
                    assert view["backorder_status"] == expected.orders[one].published_status != "Full"
                    assert {x["line_id"]: x["published"] for x in view["lines"]} == {
                        x.line_id: x.published for x in expected.orders[one].lines.values()}
                    assert all(x["manual"] for x in view["lines"])
                    status = (await http.get("/operations/status")).json()
                    assert not any(status["lag"].values()), status["lag"]

                    # The consistency page replays the topics into a schema of its own: the
                    # live state is that replay; then one order written behind the log's back
                    # is listed.
                    page = await http.get("/console/consistency", params={"run": "1"})
                    assert page.status_code == 200 and 'id="consistent"' in page.text, page.text[-2000:]
                    order = expected.orders[several[0]]
                    for line in order.lines.values():
                        line.published = 0
                    order.published_status = "None"
                    async with app.state.db.begin() as conn:
                        await conn.execute(update(t.orders).where(t.orders.c.order_id == order.order_id)
                                           .values(**order_row(order)))
                    page = await http.get("/console/consistency", params={"run": "1"})
                    assert "1 orders differ" in page.text and f"/console/orders/{order.order_id}" in page.text
    finally:
        await app.state.db.dispose()
        await _drop_schema(url, schema)


async def test_a_broker_that_does_not_answer_is_a_503_that_says_the_id_may_be_sent_again():
    url = postgres_url()
    schema = f"api_nokafka_{uuid.uuid4().hex[:10]}"
    services = Services(guard=Guard(TOKEN.encode()),
                        input_log=KafkaInputLog(KafkaSettings(bootstrap_servers="127.0.0.1:9"), timeout_ms=2000))
    app = create_app(url, schema, services=services)
    try:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
                answer = await asyncio.wait_for(http.post("/actions/recalculate", headers=AUTH,
                                                          json={"id": "again-1", "data": {}}), 30)
                assert answer.status_code == 503
                assert "again-1" in answer.json()["detail"]
    finally:
        await _drop_schema(url, schema)
