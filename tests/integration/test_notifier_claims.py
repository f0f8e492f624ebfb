"""The sending lease measured by one clock, the database's, on SQLite and PostgreSQL: the
instance that claims a notification and the one that puts back expired claims may run on
hosts whose clocks disagree. A claim by an instance whose clock is an hour behind is not
taken from it before its lease is over; one by an instance whose clock is an hour ahead is
put back once the lease is over, not an hour later."""

from __future__ import annotations

import asyncio
import time

from integration.test_notifier_smtp import backorder_changed, config_for, notifier, order_created
from notifier.domain.intake import QUEUED, SENDING
from notifier.service import NotifierService


async def _claimed_by(service: NotifierService) -> None:
    await service.take_in({"orders:0": [(1, order_created("o1"))], "changes:0": [(1, backorder_changed("o1"))]})
    [claimed] = await service.store.claim_due(service.owner, service.clock(), 10)
    assert claimed.order_id == "o1"


async def _statuses(service: NotifierService) -> list[str]:
    return [row.status for row in await service.store.notifications()]


async def test_a_claim_by_an_instance_whose_clock_is_behind_keeps_its_lease(database, tmp_path):
    config = config_for(None, tmp_path)  # sending_lease_seconds: 600 by default
    async with notifier(database, config) as right:
        behind = NotifierService(right.store, config, clock=lambda: time.time() - 3600, owner="behind")
        await _claimed_by(behind)
        assert await right.requeue_expired_claims() == 0
        assert await _statuses(right) == [SENDING]


async def test_a_claim_by_an_instance_whose_clock_is_ahead_is_put_back_when_its_lease_is_over(database, tmp_path):
    config = config_for(None, tmp_path)
    config.settings = config.settings.model_copy(update={"sending_lease_seconds": 1.0})
    async with notifier(database, config) as right:
        ahead = NotifierService(right.store, config, clock=lambda: time.time() + 3600, owner="ahead")
        await _claimed_by(ahead)
        assert await right.requeue_expired_claims() == 0  # still within its lease
        await asyncio.sleep(1.2)
        assert await right.requeue_expired_claims() == 1
        assert await _statuses(right) == [QUEUED]
