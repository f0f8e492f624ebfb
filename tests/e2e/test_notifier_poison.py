"""The notifier's worker (`backorders worker notifier`) on the real broker and PostgreSQL,
fed poison between valid records on both of its topics: a record that is not JSON, one that
is not UTF-8, a `time` the contract's parser overflows on, quantities of 2**70 and 10**30,
a NUL character in an order id, a SKU and a customer name, a 1,000,000-character SKU and a
message larger than the worker takes. Every valid change sends its email, every poison
record is dead-lettered with its reason (as `backorders notifier dead-letters` shows it),
the partitions keep flowing and the worker never exits."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import uuid

from consumer_support import BACKORDERS, assert_dead_lettered, create_topics, listed_dead_letters, produce, stop
from integration.conftest import _drop_schema, kafka_bootstrap, postgres_url
from integration.test_notifier_smtp import backorder_changed, order_created
from notifier.domain.rules import notification_id


def _edited(raw: str, change) -> bytes:
    event = json.loads(raw)
    change(event)
    return json.dumps(event).encode()


def poison(orders: str, changes: str) -> list[tuple[str, bytes, bytes, str]]:
    """(topic, key, value, what its dead letter's reason says)."""

    def line(field, value):
        def change(event):
            event["data"]["lines"][0][field] = value
        return change

    def data(field, value):
        def change(event):
            event["data"][field] = value
        return change

    def customer(field, value):
        def change(event):
            event["data"]["customer"][field] = value
        return change

    return [
        (orders, b"p1", b'{"specversion": "1.0", "type": "OrderCreated", "id": "poison-1"', "not JSON: "),
        (changes, b"p2", b"\xff\xfe\x00 not text at all", "not UTF-8: "),
        (changes, b"p3", _edited(backorder_changed("p3", id="poison-3"),
                                 lambda e: e.update(time="0001-01-01T00:00:00+01:00")),
         "time: must be at or after 1900-01-01T00:00:00Z and before 2200-01-01T00:00:00Z"),
        (changes, b"p4", _edited(backorder_changed("p4", id="poison-4"), line("qty", 2**70)),
         "integer out of range at data.lines[0].qty"),
        (orders, b"p5", _edited(order_created("p5", id="poison-5"), line("qty", 10**30)),
         "integer out of range at data.lines[0].qty"),
        (orders, b"p6", _edited(order_created("p6", id="poison-6"), data("order_id", "p\x006")),
         "NUL character at data.order_id"),
        (changes, b"p7", _edited(backorder_changed("p7", id="poison-7"), line("sku", "cat\x00hammock")),
         "NUL character at data.lines[0].sku"),
        (orders, b"p8", _edited(order_created("p8", id="poison-8"), customer("first_name", "Co\x00lin")),
         "NUL character at data.customer.first_name"),
        (orders, b"p9", _edited(order_created("p9", id="poison-9"), line("sku", "S" * 1_000_000)),
         "identifier too long (1,000,000 characters; at most 500) at data.lines[0].sku"),
        (orders, b"p10", _edited(order_created("p10", id="poison-10"), customer("last_name", "x" * 2_000_000)),
         "record too large: "),
    ]


def test_poison_records_are_dead_lettered_and_the_valid_ones_flow(tmp_path):
    servers, url = kafka_bootstrap(), postgres_url()
    suffix = uuid.uuid4().hex[:10]
    schema = f"notifier_poison_{suffix}"
    orders, changes = f"np.orders.{suffix}", f"np.backorder-changed.{suffix}"
    asyncio.run(create_topics(servers, {orders: 2, changes: 2}))
    mail = tmp_path / "mail"
    config = tmp_path / "notifier.toml"
    config.write_text(f"""
[profiles.files]
type = "file"
directory = "{mail}"

[templates.notice]
subject = "Order #?OrderID?# is on backorder"
sender_email = "orders@test.example"
profile = "files"
text = "Dear #?FirstName?#,\\n#?OrderItemsDetails2?#"

[companies."*".assignments]
EmailCustomerForBackOrder = "notice"
""")
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": servers, "BACKORDERS_TOPIC_ORDERS": orders,
           "BACKORDERS_TOPIC_BACKORDER_CHANGED": changes, "BACKORDERS_DATA_DIR": str(tmp_path)}
    log_path = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [*BACKORDERS, "worker", "notifier", "--db", url, "--schema", schema, "--config", str(config),
         "--group", f"notifier-poison-{suffix}"],
        env=env, stdout=log_path.open("a"), stderr=subprocess.STDOUT)
    bad = poison(orders, changes)
    valid_ids = []
    records: list[tuple[str, bytes, bytes]] = []
    for n in range(30):  # valid records, with the poison ones between them
        order_id = f"v{n:03d}"
        records.append((orders, order_id.encode(), order_created(order_id).encode()))
        records.append((changes, order_id.encode(), backorder_changed(order_id).encode()))
        valid_ids.append(notification_id(f"bc-{order_id}"))
        if n % 3 == 1:
            topic, key, value, _ = bad[n // 3]
            records.append((topic, key, value))
    assert len([r for r in records if r[1].startswith(b"p")]) == len(bad)
    try:
        time.sleep(3)  # the worker joins its group and is assigned the partitions
        asyncio.run(produce(servers, records))
        deadline = time.monotonic() + 120
        while True:
            written = {path.stem for path in mail.glob("*.eml")}
            dead = _dead_letters(url, schema, env)
            if written >= set(valid_ids) and len(dead) >= len(bad):
                break
            assert worker.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, (f"{len(written)} of {len(valid_ids)} emails, {len(dead)} of "
                                                 f"{len(bad)} dead letters\n" + log_path.read_text()[-3000:])
            time.sleep(1.0)
        time.sleep(2.0)  # anything more would be a duplicate
        assert worker.poll() is None, "the worker exited"
        dead = _dead_letters(url, schema, env)
    finally:
        stop(worker)
        asyncio.run(_drop_schema(url, schema))

    assert {path.stem for path in mail.glob("*.eml")} == set(valid_ids)
    assert_dead_lettered(dead, bad)


def _dead_letters(url: str, schema: str, env: dict) -> list[dict]:
    return listed_dead_letters(["notifier", "dead-letters", "--db", url, "--schema", schema, "--jsonl"], env)
