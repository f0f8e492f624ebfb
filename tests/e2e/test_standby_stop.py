"""A standby waiting for the active process's lock can be stopped: SIGTERM or SIGINT ends it
within seconds, with exit code 0 as for a running worker, and the active one carries on. The
recalculator (single and sharded), channel-sync and the outbox relay, as a user runs them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from backorders_platform.kafka_settings import KafkaSettings
from e2e.test_worker_crash import BACKORDERS, handled
from integration.conftest import _drop_schema, kafka_bootstrap, postgres_url
from integration.test_kafka_worker import create_topics
from recalculator.cli.worker import produce
from recalculator.publishing import to_json
from support import created

SIGNALS = [pytest.param(signal.SIGTERM, id="SIGTERM"), pytest.param(signal.SIGINT, id="SIGINT")]


def wait_for_line(log: Path, text: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in (log.read_text() if log.exists() else ""):
        assert process.poll() is None, f"stopped before logging {text!r}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"never logged {text!r}:\n{log.read_text()[-3000:]}"
        time.sleep(0.1)


def start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"))


def stopped_within(process: subprocess.Popen, sig: signal.Signals, seconds: float) -> int:
    began = time.monotonic()
    process.send_signal(sig)
    try:
        code = process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the process did not stop within {seconds}s of {sig.name}")
    print(f"\nstopped {time.monotonic() - began:.2f}s after {sig.name}")
    return code


@pytest.mark.parametrize("sig", SIGNALS)
def test_a_standby_recalculator_waiting_for_the_lock_stops_on_a_signal(sig, tmp_path):
    servers, url = kafka_bootstrap(), postgres_url()
    schema = f"standby_{uuid.uuid4().hex[:10]}"
    topics = asyncio.run(create_topics(servers))
    kafka = KafkaSettings(bootstrap_servers=servers)
    env = {**os.environ, "BACKORDERS_TOPIC_ORDERS": topics.orders, "BACKORDERS_TOPIC_INVENTORY": topics.inventory,
           "BACKORDERS_TOPIC_REFERENCE": topics.reference, "BACKORDERS_TOPIC_COMMANDS": topics.commands,
           "KAFKA_BOOTSTRAP_SERVERS": servers, "BACKORDERS_LOG_LEVEL": "info"}
    command = [*BACKORDERS, "worker", "recalculator", "--db", url, "--schema", schema,
               "--recalc-every-minutes", "0", "--metrics-port", "0"]
    active = standby = None
    try:
        active = start(command, env, tmp_path / "active.log")
        wait_for_line(tmp_path / "active.log", '"lock_acquired"', active)
        standby = start(command, env, tmp_path / "standby.log")
        wait_for_line(tmp_path / "standby.log", '"waiting_for_lock"', standby)
        time.sleep(1.0)  # well inside the wait
        assert '"lock_acquired"' not in (tmp_path / "standby.log").read_text()

        assert stopped_within(standby, sig, 5) == 0

        # The active worker is unaffected: still running, still handling inputs.
        assert active.poll() is None
        asyncio.run(produce([to_json(created(f"o{n}", [("1", "sku", 1)])).encode() for n in range(5)],
                            kafka, topics))
        deadline = time.monotonic() + 30
        while handled(url, schema) < 5:
            assert active.poll() is None and time.monotonic() < deadline, "the active worker stopped working"
            time.sleep(0.2)
        active.send_signal(signal.SIGTERM)
        assert active.wait(timeout=30) == 0
    finally:
        for process in (active, standby):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        asyncio.run(_drop_schema(url, schema))


@pytest.mark.parametrize("sig", SIGNALS)
def test_a_second_sharded_worker_stops_on_a_signal_while_its_roles_wait(sig, tmp_path):
    """Its router and assembler roles wait for the first worker's locks: they stop waiting at
    once, rather than at the worker's 15-second deadline for its roles."""
    servers, url = kafka_bootstrap(), postgres_url()
    base = f"sstandby_{uuid.uuid4().hex[:10]}"
    topics = asyncio.run(create_topics(servers))
    kafka = KafkaSettings(bootstrap_servers=servers)
    env = {**os.environ, "BACKORDERS_TOPIC_ORDERS": topics.orders, "BACKORDERS_TOPIC_INVENTORY": topics.inventory,
           "BACKORDERS_TOPIC_REFERENCE": topics.reference, "BACKORDERS_TOPIC_COMMANDS": topics.commands,
           "KAFKA_BOOTSTRAP_SERVERS": servers, "BACKORDERS_LOG_LEVEL": "info"}
    command = [*BACKORDERS, "worker", "recalculator", "--db", url, "--schema", base, "--shards", "2",
               "--recalc-every-minutes", "0", "--metrics-port", "0"]
    first = second = None
    try:
        first = start(command, env, tmp_path / "first.log")
        wait_for_line(tmp_path / "first.log", '"lock_acquired"', first)  # the router's
        second = start(command, env, tmp_path / "second.log")
        wait_for_line(tmp_path / "second.log", '"waiting_for_lock"', second)
        time.sleep(2.0)

        assert stopped_within(second, sig, 8) == 0

        assert first.poll() is None
        asyncio.run(produce([to_json(created(f"o{n}", [("1", f"sku-{n}", 1)])).encode() for n in range(5)],
                            kafka, topics))
        deadline = time.monotonic() + 60
        while not _assembled(url, base, 5):
            assert first.poll() is None and time.monotonic() < deadline, "the first worker stopped working"
            time.sleep(0.3)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        from recalculator.kafka import sharded

        for schema in sharded.all_schemas(base, 2):
            asyncio.run(_drop_schema(url, schema))


def _assembled(url: str, base: str, count: int) -> bool:
    from recalculator.kafka import sharded

    try:
        return len(asyncio.run(sharded.assembled_state(url, base))) >= count
    except Exception:  # noqa: BLE001 - not created yet
        return False


def test_a_standby_channel_sync_stops_on_sigterm(tmp_path):
    from e2e.test_channel_kafka_worker import create_topics as create_channel_topics

    servers, url = kafka_bootstrap(), postgres_url()
    suffix = uuid.uuid4().hex[:10]
    schema = f"csstandby_{suffix}"
    names = {"inventory": f"css.inv.{suffix}", "reference": f"css.ref.{suffix}", "positions": f"css.spc.{suffix}"}
    asyncio.run(create_channel_topics(servers, {name: 1 for name in names.values()}))
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": servers,
           "BACKORDERS_TOPIC_INVENTORY": names["inventory"], "BACKORDERS_TOPIC_REFERENCE": names["reference"],
           "BACKORDERS_TOPIC_SKU_POSITION_CHANGED": names["positions"], "CHANNEL_SYNC_DATABASE_URL": url,
           "CHANNEL_SYNC_SCHEMA": schema, "CHANNEL_SYNC_APP_ID": f"css-{suffix}",
           "BACKORDERS_DATA_DIR": str(tmp_path), "BACKORDERS_LOG_LEVEL": "info"}
    command = [*BACKORDERS, "worker", "channel-sync", "--loglevel", "info"]
    first = second = None
    try:
        first = start(command, env, tmp_path / "first.log")
        wait_for_line(tmp_path / "first.log", '"lock_acquired"', first)
        second = start(command, env, tmp_path / "second.log")
        wait_for_line(tmp_path / "second.log", '"waiting_for_lock"', second)
        time.sleep(1.0)
        assert stopped_within(second, signal.SIGTERM, 8) == 0
        assert first.poll() is None
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        asyncio.run(_drop_schema(url, schema))


def test_relays_one_at_a_time_a_waiting_one_stops_on_a_signal_and_one_takes_over(tmp_path):
    from integration.test_outbox_relay import fresh_topics
    from recalculator.kafka.relay import RELAY_SOURCE
    from recalculator.runtime.embedded import EmbeddedRuntime, Record

    servers, url = kafka_bootstrap(), postgres_url()
    schema = f"relays_{uuid.uuid4().hex[:10]}"
    topics = asyncio.run(fresh_topics(servers))

    async def publish(first: int) -> int:
        """Events into the outbox; returns its last sequence number."""
        async with EmbeddedRuntime(url, schema=schema) as runtime:
            await runtime.handle_batch([Record("log", n, to_json(created(f"o{n}", [("1", "sku", 1)])))
                                        for n in range(first, first + 20)])
            return (await runtime.repository.outbox_rows(0, 100_000))[-1].seq

    async def position() -> int:
        async with EmbeddedRuntime(url, schema=schema) as runtime:
            return await runtime.repository.position(RELAY_SOURCE) or 0

    def relayed_up_to(seq: int, process: subprocess.Popen) -> None:
        deadline = time.monotonic() + 30
        while asyncio.run(position()) < seq:
            assert process.poll() is None and time.monotonic() < deadline, "not relayed"
            time.sleep(0.2)

    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": servers, "BACKORDERS_LOG_LEVEL": "info",
           "BACKORDERS_TOPIC_BACKORDER_CHANGED": topics.backorder_changed,
           "BACKORDERS_TOPIC_PRODUCT_BACKORDER_CHANGED": topics.product_backorder_changed,
           "BACKORDERS_TOPIC_SKU_POSITION_CHANGED": topics.sku_position_changed,
           "BACKORDERS_TOPIC_DEAD_LETTERS": topics.dead_letters}
    command = [*BACKORDERS, "relay", "--db", url, "--schema", schema]
    processes: list[subprocess.Popen] = []
    try:
        last = asyncio.run(publish(1))
        active = start(command, env, tmp_path / "active.log")
        processes.append(active)
        relayed_up_to(last, active)
        waiting = start(command, env, tmp_path / "waiting.log")
        processes.append(waiting)
        wait_for_line(tmp_path / "waiting.log", "another relay is running on this outbox", waiting)
        time.sleep(0.5)
        assert stopped_within(waiting, signal.SIGINT, 5) == 0

        standby = start(command, env, tmp_path / "standby.log")
        processes.append(standby)
        wait_for_line(tmp_path / "standby.log", '"relay_waiting_for_lock"', standby)
        last = asyncio.run(publish(21))
        relayed_up_to(last, active)
        active.send_signal(signal.SIGTERM)
        assert active.wait(timeout=30) == 0
        wait_for_line(tmp_path / "standby.log", '"relay_lock_acquired"', standby)
        last = asyncio.run(publish(41))
        relayed_up_to(last, standby)
        assert stopped_within(standby, signal.SIGTERM, 10) == 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        asyncio.run(_drop_schema(url, schema))
