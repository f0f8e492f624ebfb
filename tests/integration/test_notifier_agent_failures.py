"""The notifier's faust agent (`notifier.kafka_app.take_in`) when its intake fails, on SQLite
and PostgreSQL, fed by a stand-in for faust's stream: no exception loses a record. A batch
that fails for an unforeseen reason is tried again; a record that keeps failing is
dead-lettered alone, with the traceback, and the others are taken in; an outage is waited
out however long it lasts, without counting as a failure."""

from __future__ import annotations

from dataclasses import dataclass

import notifier.domain.projection as projection_module
import notifier.kafka_app as kafka_app
import pytest
from integration.test_notifier_smtp import backorder_changed, config_for, notifier, order_created
from notifier.domain.intake import QUEUED

ORDERS, CHANGES = "nt.orders", "nt.changes"


@dataclass
class _Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass
class _Event:
    message: _Message


class Stream:
    """What the agent reads of faust's stream: batches of events."""

    def __init__(self, *batches: list[tuple[str, int, str]]) -> None:
        self.batches = batches

    async def take_events(self, size: int, within: float):
        offsets: dict[str, int] = {}
        for batch in self.batches:
            events = []
            for topic, partition, value in batch:
                key = f"{topic}:{partition}"
                offsets[key] = offsets.get(key, -1) + 1
                events.append(_Event(_Message(topic, partition, offsets[key], None, value.encode())))
            yield events


@pytest.fixture
async def agent_service(database, tmp_path, monkeypatch):
    async with notifier(database, config_for(None, tmp_path)) as service:
        service.intake_attempts, service.retry_pause = 3, 0.01
        monkeypatch.setattr(kafka_app, "_service", service)
        yield service


def _workload() -> list[tuple[str, int, str]]:
    return [
        (ORDERS, 0, order_created("o1")), (ORDERS, 0, order_created("o-bug")), (ORDERS, 0, order_created("o2")),
        (CHANGES, 0, backorder_changed("o1")), (CHANGES, 0, backorder_changed("o2")),
        (CHANGES, 0, backorder_changed("o-bug")),
    ]


async def test_a_record_that_keeps_failing_is_dead_lettered_alone_and_the_others_go_on(agent_service, monkeypatch):
    real_apply = projection_module.apply
    tries = []

    def apply(facts, event):
        if getattr(event.data, "order_id", None) == "o-bug":
            tries.append(event.id)
            raise RuntimeError("an input nothing foresaw")
        return real_apply(facts, event)

    monkeypatch.setattr(projection_module, "apply", apply)
    await kafka_app.take_in.fun(Stream(_workload()))

    store = agent_service.store
    rows = {r.order_id: r.status for r in await store.notifications()}
    # o-bug's change waits for its order's data, which was dead-lettered; the others are queued.
    assert rows == {"o1": QUEUED, "o2": QUEUED, "o-bug": "pending"}
    [dead] = await store.dead_letters()
    assert (dead.source, dead.position) == (f"{ORDERS}:0", 1)
    assert dead.reason.startswith("failed 3 times: RuntimeError: an input nothing foresaw\nTraceback")
    assert "in apply" in dead.reason and '"order_id": "o-bug"' in dead.raw
    assert await store.positions() == {f"{ORDERS}:0": 2, f"{CHANGES}:0": 2}
    assert len(tries) == 3 + 3  # the batch three times, then the record alone three times


async def test_a_failure_that_goes_away_is_tried_again_and_nothing_is_dead_lettered(agent_service, monkeypatch):
    real_apply = projection_module.apply
    failures = []

    def apply(facts, event):
        if len(failures) < 2:
            failures.append(event.id)
            raise KeyError("a passing fault")
        return real_apply(facts, event)

    monkeypatch.setattr(projection_module, "apply", apply)
    await kafka_app.take_in.fun(Stream(_workload()))
    store = agent_service.store
    assert {r.order_id: r.status for r in await store.notifications()} == dict.fromkeys(("o1", "o2", "o-bug"), QUEUED)
    assert await store.dead_letters() == []
    assert await store.positions() == {f"{ORDERS}:0": 2, f"{CHANGES}:0": 2}


async def test_an_outage_is_waited_out_without_counting_as_a_failure(agent_service, monkeypatch):
    store = agent_service.store
    real_intake, real_reachable = store.intake, store.reachable
    down = {"intakes": 0}

    async def intake(*args, **kwargs):
        if down["intakes"] < 8:  # far more than the 3 attempts a failure gets
            down["intakes"] += 1
            raise ConnectionRefusedError("the database went away")
        return await real_intake(*args, **kwargs)

    async def reachable():
        return down["intakes"] >= 8 and await real_reachable()

    monkeypatch.setattr(store, "intake", intake)
    monkeypatch.setattr(store, "reachable", reachable)
    await kafka_app.take_in.fun(Stream(_workload()[:3], _workload()[3:]))
    assert down["intakes"] == 8
    assert {r.order_id: r.status for r in await store.notifications()} == dict.fromkeys(("o1", "o2", "o-bug"), QUEUED)
    assert await store.dead_letters() == []
