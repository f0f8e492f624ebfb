"""The notifier's faust agent (`NotifierKafkaWorker.take_in`) when its intake fails, on SQLite
and PostgreSQL, fed by a stand-in for faust's stream: no exception loses a record. A batch
that fails for an unforeseen reason is tried again; a record that keeps failing is
dead-lettered alone, with the traceback, and the others are taken in; an outage is waited
out however long it lasts, without counting as a failure."""

from __future__ import annotations

import notifier.domain.projection as projection_module
import pytest
from backorder_events.topics import InputTopics, OutputTopics
from backorders_platform.kafka_settings import KafkaSettings
from consumer_support import Stream, database_away, failing_apply
from integration.test_notifier_smtp import backorder_changed, config_for, notifier, order_created
from notifier.domain.intake import QUEUED
from notifier.kafka_worker import NotifierKafkaWorker, NotifierWorkerConfig

ORDERS, CHANGES = "nt.orders", "nt.changes"


@pytest.fixture
async def agent_service(database, tmp_path, worker):
    async with notifier(database, config_for(None, tmp_path)) as service:
        service.intake_attempts, service.retry_pause = 3, 0.01
        worker.running.service = service
        yield service


@pytest.fixture
def worker() -> NotifierKafkaWorker:
    return NotifierKafkaWorker(NotifierWorkerConfig(), KafkaSettings(), InputTopics(), OutputTopics())


def _workload() -> list[tuple[str, int, str]]:
    return [
        (ORDERS, 0, order_created("o1")), (ORDERS, 0, order_created("o-bug")), (ORDERS, 0, order_created("o2")),
        (CHANGES, 0, backorder_changed("o1")), (CHANGES, 0, backorder_changed("o2")),
        (CHANGES, 0, backorder_changed("o-bug")),
    ]


async def test_a_record_that_keeps_failing_is_dead_lettered_alone_and_the_others_go_on(agent_service, worker, monkeypatch):
    tries = failing_apply(monkeypatch, projection_module,
                          lambda event, _: getattr(event.data, "order_id", None) == "o-bug",
                          RuntimeError("an input nothing foresaw"))
    await worker.take_in.fun(Stream(_workload()))

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


async def test_a_failure_that_goes_away_is_tried_again_and_nothing_is_dead_lettered(agent_service, worker, monkeypatch):
    failing_apply(monkeypatch, projection_module, lambda _, failed: len(failed) < 2, KeyError("a passing fault"))
    await worker.take_in.fun(Stream(_workload()))
    store = agent_service.store
    assert {r.order_id: r.status for r in await store.notifications()} == dict.fromkeys(("o1", "o2", "o-bug"), QUEUED)
    assert await store.dead_letters() == []
    assert await store.positions() == {f"{ORDERS}:0": 2, f"{CHANGES}:0": 2}


async def test_an_outage_is_waited_out_without_counting_as_a_failure(agent_service, worker, monkeypatch):
    store = agent_service.store
    # far more than the 3 attempts a failure gets
    down = database_away(monkeypatch, store, "intake", 8, ConnectionRefusedError("the database went away"))
    await worker.take_in.fun(Stream(_workload()[:3], _workload()[3:]))
    assert down["failures"] == 8
    assert {r.order_id: r.status for r in await store.notifications()} == dict.fromkeys(("o1", "o2", "o-bug"), QUEUED)
    assert await store.dead_letters() == []
