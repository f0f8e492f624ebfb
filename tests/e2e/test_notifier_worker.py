"""The notifier's faust worker (`backorders worker notifier`) on the real broker and
PostgreSQL, sending to an SMTP server started here: BackorderChanged and order events stream
into their topics (some changes before their orders, some records twice) while the worker
is killed with SIGKILL and restarted. Every expected email arrives; none is lost.

A crash between the server's acceptance of a message and the commit that records it sends
that message again after the restart (docs/notifier.md): such a repeat carries the same
Message-ID and the same bytes, and there can be at most one per kill. The test counts them.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from backorders_platform.database import make_engine
from integration.conftest import _drop_schema, kafka_bootstrap, postgres_url
from integration.test_notifier_smtp import (
    Recorder,
    backorder_changed,
    order_created,
    smtp_server,
)
from notifier.adapters.store import Store
from notifier.domain.rules import notification_id

BACKORDERS = [sys.executable, "-m", "backorders_app.main"]


async def create_topics(servers: str, suffix: str) -> tuple[str, str]:
    orders, changes = f"nt.orders.{suffix}", f"nt.backorder-changed.{suffix}"
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(orders, num_partitions=3, replication_factor=1),
                                   NewTopic(changes, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()
    return orders, changes


async def produce(servers: str, records: list[tuple[str, str, str]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send(topic, value.encode(), key=key.encode())
        await producer.flush()
    finally:
        await producer.stop()


def workload(orders_topic: str, changes_topic: str, count: int, rng: random.Random):
    """(records in production order, the ids of the changes that must each send one email)."""
    records, expected = [], set()
    for n in range(count):
        order_id = f"7{n:05d}"
        created = (orders_topic, order_id, order_created(order_id, email_address=f"customer{n}@example.com",
                                                         first=f"First{n}", last="Tester"))
        marked = f"bc-{order_id}-1"
        changes = [(changes_topic, order_id, backorder_changed(order_id, id=marked))]
        expected.add(marked)
        if n % 5 == 0:  # back in stock, then short again: a second email
            changes.append((changes_topic, order_id, backorder_changed(
                order_id, id=f"bc-{order_id}-2", status="None", previous="Full", time="2025-04-30T11:00:00Z",
                lines=(("1", "cat-hammock", 2, 0),))))
            changes.append((changes_topic, order_id, backorder_changed(
                order_id, id=f"bc-{order_id}-3", status="Partial", time="2025-04-30T12:00:00Z",
                lines=(("1", "cat-hammock", 2, 1),))))
            expected.add(f"bc-{order_id}-3")
        if n % 7 == 0:  # relayed twice
            changes.append(changes[0])
        # A fifth of the changes reach their topic before the order does.
        records.extend([*changes, created] if n % 5 == 1 else [created, *changes])
    return records, expected


def test_sigkill_while_changes_stream_in_loses_no_email(tmp_path):
    servers, url = kafka_bootstrap(), postgres_url()
    suffix = uuid.uuid4().hex[:10]
    schema = f"notifier_{suffix}"
    orders_topic, changes_topic = asyncio.run(create_topics(servers, suffix))
    rng = random.Random(int(os.environ.get("CRASH_SEED", "5")))
    records, expected_changes = workload(orders_topic, changes_topic, 600, rng)
    expected = {notification_id(change) for change in expected_changes}

    handler = Recorder(delay=0.01)
    with smtp_server(handler) as server:
        config = tmp_path / "notifier.toml"
        config.write_text(f"""
[notifier]
message_id_domain = "test.example"
sending_lease_seconds = 3
cooldown_minutes = 0  # every transition of the workload sends its email

[profiles.main]
type = "smtp"
host = "127.0.0.1"
port = {server.port}
security = "none"
timeout_seconds = 5
backoff_seconds = 0.2

[templates.notice]
subject = "Order #?OrderID?# is on backorder"
sender_email = "orders@test.example"
profile = "main"
text = "Dear #?FirstName?#,\\n#?OrderItemsDetails2?#"
html = "<p>Dear #?FirstName?#,</p>#?OrderItemsDetails?#"

[companies."*".assignments]
EmailCustomerForBackOrder = "notice"
""")
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": servers, "BACKORDERS_TOPIC_ORDERS": orders_topic,
               "BACKORDERS_TOPIC_BACKORDER_CHANGED": changes_topic, "BACKORDERS_DATA_DIR": str(tmp_path)}
        worker = [*BACKORDERS, "worker", "notifier", "--db", url, "--schema", schema, "--config", str(config),
                  "--group", f"notifier-test-{suffix}"]
        log_path = tmp_path / "worker.log"

        def start():
            return subprocess.Popen(worker, env=env, stdout=log_path.open("a"), stderr=subprocess.STDOUT)

        def stream():
            for start_at in range(0, len(records), 20):
                asyncio.run(produce(servers, records[start_at:start_at + 20]))
                time.sleep(0.5)

        producer = threading.Thread(target=stream)
        producer.start()
        kills = []
        try:
            for round_ in range(3):
                process = start()
                # A restarted worker first waits for the group to drop the killed member.
                time.sleep(rng.uniform(5.0, 8.0) if round_ == 0 else rng.uniform(12.0, 15.0))
                assert process.poll() is None, log_path.read_text()[-3000:]
                process.send_signal(signal.SIGKILL)
                process.wait()
                kills.append(len(handler.received))
            producer.join()
            survivor = start()
            deadline = time.monotonic() + 150
            while {_id(r) for r in handler.received} != expected:
                assert survivor.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, (
                    f"{len({_id(r) for r in handler.received} & expected)} of {len(expected)} emails arrived")
                time.sleep(0.5)
            time.sleep(2)  # anything more would be a duplicate: give it the time to show
            survivor.send_signal(signal.SIGTERM)
            survivor.wait(timeout=60)
            rows = asyncio.run(_notifications(url, schema))
        finally:
            producer.join()
            asyncio.run(_drop_schema(url, schema))

    ids = [_id(r) for r in handler.received]
    repeats = {mid: n for mid, n in Counter(ids).items() if n > 1}
    print(f"\nnotifier worker crash test: {len(records)} records, {len(expected)} emails expected, "
          f"kills after {kills} emails received, {len(ids)} received, repeats {sorted(repeats.values())}")
    assert set(ids) == expected  # nothing lost, nothing unexpected
    assert sum(n - 1 for n in repeats.values()) <= len(kills), repeats
    by_id: dict[str, set[bytes]] = {}
    for received in handler.received:
        by_id.setdefault(_id(received), set()).add(received.data)
    assert all(len(versions) == 1 for versions in by_id.values()), "a repeat differs from the first send"
    assert kills[0] > 0 and len(set(kills)) == 3, f"the kills did not land while emails went out: {kills}"
    assert {r.notification_id: r.status for r in rows} == dict.fromkeys(expected, "sent")
    # The redelivered changes and the ones that came before their orders: one email each.
    assert all(r.rcpt_tos == [f"customer{int(_order(r)[1:])}@example.com"] for r in handler.received)


def _id(received) -> str:
    return received.message["Message-ID"].strip("<>").split("@")[0]


def _order(received) -> str:
    return received.message["Subject"].split()[1]  # "Order <id> is on backorder"


async def _notifications(url: str, schema: str) -> list:
    db = make_engine(url, schema)
    try:
        return await Store(db, schema).notifications()
    finally:
        await db.dispose()
