"""The delivery round of the application service, over a stand-in store: a message that
cannot be built, for whatever reason, is recorded failed and the round goes on."""

from __future__ import annotations

import asyncio

import notifier.service as service_module
from notifier.adapters.store import Claimed
from notifier.defaults import default_config
from notifier.domain.facts import OrderFacts
from notifier.service import NotifierService


class StandInStore:
    """Only what a delivery round calls, in memory."""

    def __init__(self, claimed: list[Claimed]) -> None:
        self.claimed = claimed
        self.failed: dict[str, str] = {}
        self.sent: list[str] = []

    async def claim_due(self, owner, now, limit):
        claimed, self.claimed = self.claimed, []
        return claimed

    async def facts(self, order_ids):
        return {order_id: OrderFacts(order_id, known=True, company_id="default",
                                     customer={"email": "ann@example.com", "first_name": "Ann"})
                for order_id in order_ids}

    async def mark_failed(self, notification_id, owner, *, attempts, error, now, message_id=None,
                          recipient=None):
        self.failed[notification_id] = error
        return True

    async def mark_sent_many(self, items, owner, now):
        self.sent.extend(item[0] for item in items)
        return len(items)


def claimed(order_id: str) -> Claimed:
    return Claimed(f"n-{order_id}", order_id, "default", "backorder-notice", 0, {"lines": []}, 0)


def test_a_message_that_cannot_be_built_is_recorded_failed_and_the_round_goes_on(tmp_path, monkeypatch):
    real_build = service_module.build_message

    def build(config, template, notification, order_id, *args):
        if order_id == "o1":
            raise UnicodeEncodeError("utf-8", "Jo\ud800", 2, 3, "surrogates not allowed")
        return real_build(config, template, notification, order_id, *args)

    monkeypatch.setattr(service_module, "build_message", build)
    store = StandInStore([claimed("o1"), claimed("o2")])
    service = NotifierService(store, default_config(tmp_path))
    tally = asyncio.run(service.deliver_due())
    assert (tally.failed, tally.delivered) == (1, 1)
    assert store.failed == {"n-o1": "message cannot be built: UnicodeEncodeError: 'utf-8' codec can't encode "
                                    "character '\\ud800' in position 2: surrogates not allowed"}
    assert store.sent == ["n-o2"]
