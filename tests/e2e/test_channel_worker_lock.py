"""One channel-sync worker at a time per state, on a real Kafka broker and PostgreSQL: a
second worker waits for the lock as a standby outside the consumer group (its projection
would miss the partitions the first one holds), takes over when the first is killed, and
`backorders channels push` refuses while a worker runs. A bad configuration file stops the
worker at start with readable lines."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from channel_support import CREDENTIALS, http_config, position
from e2e.test_channel_kafka_worker import ThreadedStandIn, create_topics, publish
from integration.conftest import _drop_schema, postgres_url
from integration.test_channel_embedded import _toml


async def group_members(servers: str, group: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
        [described] = response.groups
        return len(described[5])  # (error, group, state, protocol type, protocol, members, ...)
    finally:
        await admin.close()


def overstock_rows(server) -> dict[str, str]:
    """SKU → the last quantity Overstock got."""
    last = {}
    for call in list(server.requests):
        if call.channel == "overstock":
            for line in csv.DictReader(io.StringIO(call.body)):
                last[line["SKU"]] = line["Quantity"]
    return last


def wait_until(condition, what: str, timeout: float, *alive) -> None:
    end = time.monotonic() + timeout
    while not condition():
        for process, log in alive:
            assert process.poll() is None, f"{what}: a worker stopped\n" + log.read_text()[-3000:]
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.3)


def test_a_second_worker_waits_as_a_standby_and_takes_over(tmp_path):
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not servers:
        pytest.fail("KAFKA_BOOTSTRAP_SERVERS is not set: run the tests through `make test`")
    url = postgres_url()
    suffix = uuid.uuid4().hex[:10]
    schema, group = f"chanlock_{suffix}", f"cs-lock-{suffix}"
    topics = {"inventory": f"csl.inv.{suffix}", "reference": f"csl.ref.{suffix}", "positions": f"csl.spc.{suffix}"}
    asyncio.run(create_topics(servers, {topics["inventory"]: 1, topics["reference"]: 1, topics["positions"]: 3}))
    skus = [f"SKU-{n}" for n in range(9)]

    def positions(available: int):
        return [(topics["positions"], sku.encode(), json_bytes(position(sku, available, 0))) for sku in skus]

    with ThreadedStandIn() as server:
        config = tmp_path / "channels.toml"
        config.write_text(_toml(http_config(server.base, wayfair=None, magento=None)))
        env = {
            **os.environ, **CREDENTIALS,
            "KAFKA_BOOTSTRAP_SERVERS": servers,
            "BACKORDERS_TOPIC_INVENTORY": topics["inventory"], "BACKORDERS_TOPIC_REFERENCE": topics["reference"],
            "BACKORDERS_TOPIC_SKU_POSITION_CHANGED": topics["positions"],
            "CHANNEL_SYNC_DATABASE_URL": url, "CHANNEL_SYNC_SCHEMA": schema, "CHANNEL_SYNC_CONFIG": str(config),
            "CHANNEL_SYNC_APP_ID": group, "CHANNEL_SYNC_BATCH_SIZE": "20",
            "CHANNEL_SYNC_PUSH_EVERY_SECONDS": "2", "CHANNEL_SYNC_SESSION_TIMEOUT_SECONDS": "6",
            "BACKORDERS_DATA_DIR": str(tmp_path), "BACKORDERS_LOG_LEVEL": "info",
        }
        command = [sys.executable, "-m", "faust", "-A", "channel_sync.kafka_app", "worker", "--without-web",
                   "-l", "info"]
        logs = {name: tmp_path / f"{name}.log" for name in ("first", "second")}
        files = {name: open(path, "ab") for name, path in logs.items()}  # noqa: SIM115 - closed below
        first = second = None
        try:
            first = subprocess.Popen(command, env=env, stdout=files["first"], stderr=files["first"], cwd=tmp_path)
            asyncio.run(publish(servers, positions(1)))
            wait_until(lambda: overstock_rows(server) == {sku: "1" for sku in skus}, "the first worker's push",
                       90, (first, logs["first"]))

            second = subprocess.Popen(command, env=env, stdout=files["second"], stderr=files["second"], cwd=tmp_path)
            wait_until(lambda: '"waiting_for_lock"' in logs["second"].read_text(), "the standby", 60,
                       (second, logs["second"]))
            time.sleep(8)  # time enough to join the group, were it to
            assert asyncio.run(group_members(servers, group)) == 1
            # The first worker still has every partition: all of the new positions are pushed.
            asyncio.run(publish(servers, positions(2)))
            wait_until(lambda: overstock_rows(server) == {sku: "2" for sku in skus}, "the first worker alone",
                       60, (first, logs["first"]), (second, logs["second"]))
            assert '"lock_acquired"' not in logs["second"].read_text()

            # A push from the command line is refused while a worker runs.
            refused = subprocess.run(
                [sys.executable, "-m", "backorders_app.main", "channels", "push", "--db", url, "--schema", schema,
                 "--config", str(config)],
                env=env, capture_output=True, text=True, timeout=120, check=False,
            )
            assert refused.returncode == 2, refused.stderr
            assert "a channel-sync worker is running on this state" in refused.stderr

            # The first one killed: the standby takes the lock, joins and goes on.
            first.send_signal(signal.SIGKILL)
            first.wait()
            wait_until(lambda: '"lock_acquired"' in logs["second"].read_text(), "the take-over", 60,
                       (second, logs["second"]))
            asyncio.run(publish(servers, positions(3)))
            wait_until(lambda: overstock_rows(server) == {sku: "3" for sku in skus}, "the second worker's push",
                       90, (second, logs["second"]))
            second.send_signal(signal.SIGTERM)
            second.wait(30)

            # No worker: the command line pushes (nothing is left to send).
            pushed = subprocess.run(
                [sys.executable, "-m", "backorders_app.main", "channels", "push", "--db", url, "--schema", schema,
                 "--config", str(config)],
                env=env, capture_output=True, text=True, timeout=120, check=False,
            )
            assert pushed.returncode == 0, pushed.stderr
        finally:
            for process in (first, second):
                if process is not None and process.poll() is None:
                    process.kill()
                    process.wait()
            for file in files.values():
                file.close()
            asyncio.run(_drop_schema(url, schema))


def json_bytes(event: dict) -> bytes:
    return json.dumps(event).encode()


@pytest.mark.parametrize("how", ["backorders", "faust"])
def test_a_bad_configuration_stops_the_worker_with_readable_lines(tmp_path, how):
    config = tmp_path / "channels.toml"
    config.write_text('[channels.wayfair]\nkind = "wayfair"\nurl = "https://api.example/graphql"\n'
                      'token_url = "ftp://sso.example/token"\nsupplier_id = 7\n'
                      '[channels.overstock]\nkind = "overstock"\nsink = "file"\n'
                      'sku_map = { "A-1" = "OS-1", "B-1" = "OS-1" }\n')
    command = {
        "backorders": [sys.executable, "-m", "backorders_app.main", "worker", "channel-sync"],
        "faust": [sys.executable, "-m", "faust", "-A", "channel_sync.kafka_app", "worker", "--without-web"],
    }[how]
    env = {**os.environ, **CREDENTIALS, "CHANNEL_SYNC_CONFIG": str(config), "BACKORDERS_DATA_DIR": str(tmp_path),
           "CHANNEL_SYNC_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert result.returncode != 0
    assert "channel-sync: invalid channel configuration:" in result.stderr
    assert f"{config}: channels.wayfair.token_url: must start with http:// or https://" in result.stderr
    assert f"{config}: channels.overstock: A-1, B-1 are all mapped to 'OS-1'" in result.stderr
    assert "Traceback" not in result.stderr
