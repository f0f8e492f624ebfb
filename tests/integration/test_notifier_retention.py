"""The notifier's retention, on SQLite and PostgreSQL, in business time: old sent and
suppressed notifications, closed orders and old dead letters go; what is still needed stays
(notifications pending, queued or failed, open orders, the emails the cool-down must see);
a change replayed after its notification was pruned sends nothing; and over two months of
business days the tables stay the same size."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from backorders_platform.screening import Refused
from integration.test_notifier_smtp import notifier
from notifier.adapters import tables as t
from notifier.adapters.store import Store
from notifier.config import from_mapping
from notifier.defaults import default_mapping
from notifier.domain.intake import FAILED, PENDING, QUEUED, SENT, SUPPRESSED
from notifier.service import NotifierService

START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def at(days: float) -> str:
    return (START + timedelta(days=days)).isoformat().replace("+00:00", "Z")


def created(order_id: str, days: float, *, email: str | None = "ann@example.com") -> str:
    return json.dumps({
        "specversion": "1.0", "id": f"oc-{order_id}", "source": "/oms", "type": "OrderCreated", "time": at(days),
        "data": {"order_id": order_id, "order_date": at(days), "company_id": "c1", "payment_status": "Charged",
                 "customer": {"email": email, "first_name": "Ann"} if email else {"first_name": "Ann"},
                 "lines": [{"line_id": "1", "sku": "MUG", "qty": 1, "name": "Mug"}]},
    })


def changed(order_id: str, days: float, *, status: str = "Full", previous: str = "None", n: int = 1) -> str:
    return json.dumps({
        "specversion": "1.0", "id": f"bc-{order_id}-{n}", "source": "/backorders/recalculator",
        "type": "BackorderChanged", "time": at(days), "subject": order_id,
        "data": {"order_id": order_id, "company_id": "c1", "status": status, "previous_status": previous,
                 "reason": "recalculation", "cause_id": "c",
                 "lines": [{"line_id": "1", "sku": "MUG", "qty": 1, "backorder_qty": 0 if status == "None" else 1,
                            "previous_backorder_qty": 0}]},
    })


def closed(order_id: str, days: float, status: str = "Completed") -> str:
    return json.dumps({"specversion": "1.0", "id": f"os-{order_id}-{status}", "source": "/oms",
                       "type": "OrderStatusChanged", "time": at(days),
                       "data": {"order_id": order_id, "order_status": status}})


def config(tmp_path, **settings):
    mapping = default_mapping(tmp_path)
    mapping["notifier"].update(settings)
    return from_mapping(mapping, "test", base=tmp_path)


class Feed:
    """Records into the notifier, each source numbered on."""

    def __init__(self, service: NotifierService) -> None:
        self.service = service
        self.positions: dict[str, int] = {}

    async def __call__(self, *raws: str, source: str = "orders:0", deliver: bool = True) -> None:
        batch = []
        for raw in raws:
            self.positions[source] = self.positions.get(source, 0) + 1
            batch.append((self.positions[source], raw))
        await self.service.take_in({source: batch})
        if deliver:
            await self.service.deliver_all()


async def _statuses(store: Store) -> dict[str, str]:
    return {row.order_id: row.status for row in await store.notifications()}


async def test_old_rows_go_and_what_is_still_needed_stays(database, tmp_path):
    # Retention 1 day, but a 2-day cool-down: the emails of the last 2 days are kept.
    settings = config(tmp_path, retention_days=1, dead_letter_retention_days=7, cooldown_minutes=2 * 1440)
    async with notifier(database, settings) as service:
        feed = Feed(service)
        await feed(created("sent", 0), changed("sent", 0))
        await feed(created("closed", 0), changed("closed", 0), closed("closed", 0.5))
        await feed(created("no-email", 0, email=None), changed("no-email", 0))  # failed
        await feed(changed("pending", 0))  # its order never arrives
        await feed(created("split-parent", 0), closed("split-parent", 0.2))
        await feed(created("queued", 0), changed("queued", 0), deliver=False)  # not delivered yet
        store = service.store
        wall = service.clock()
        await store.dead_letter("dead:0", 1, b"old", Refused("old"), now=wall - 8 * 86_400)
        await store.dead_letter("dead:0", 2, b"new", Refused("new"), now=wall - 6 * 86_400)
        async with store.db.begin() as conn:  # an order split off before its original was known
            await conn.execute(t.orders.insert().values(order_id="split-child", known=False, lines="{}",
                                                        parent_order_id="split-parent"))
        assert await _statuses(store) == {"sent": SENT, "closed": SENT, "no-email": FAILED, "pending": PENDING,
                                          "queued": QUEUED}

        await feed(created("later", 10), deliver=False)  # business time moves on: day 10
        pruned = await service.prune()
        assert (pruned.notifications, pruned.orders, pruned.dead_letters) == (2, 1, 1)
        assert await _statuses(store) == {"no-email": FAILED, "pending": PENDING, "queued": QUEUED}
        facts = await store.facts(["sent", "closed", "split-parent", "split-child", "queued"])
        # The open order stays (it may be marked again); the closed one goes, unless an order
        # split from it still resolves its customer through it.
        assert set(facts) == {"sent", "split-parent", "split-child", "queued"}
        assert [row.reason for row in await store.dead_letters()] == ["new"]

        # A change replayed after its notification was pruned (a rebuild upstream): no email.
        await feed(changed("sent", 0), source="changes:replay")
        assert "sent" not in await _statuses(store)

        # The cool-down still sees the emails within its window.
        await feed(changed("sent", 10.2, n=2))
        await feed(created("other", 11.5))
        await service.prune()  # cut-off: day 9.5, the day-10 email stays
        await feed(changed("sent", 11.5, status="None", previous="Full", n=3), changed("sent", 11.6, n=4))
        rows = [(row.event_id, row.status) for row in await store.notifications(order_id="sent")]
        assert rows == [("bc-sent-2", SENT), ("bc-sent-4", SUPPRESSED)]


async def test_table_sizes_stay_flat_over_two_months_of_business_days(database, tmp_path):
    """Each business day 10 orders are created, marked as backorders, emailed and
    completed, and one bad record is dead-lettered; the service's clock follows the
    business day, and the worker's pruning runs once a day."""
    days, per_day = 62, 10
    settings = config(tmp_path, retention_days=30, dead_letter_retention_days=14)
    clock = {"now": START.timestamp()}
    async with notifier(database, settings) as base:
        service = NotifierService(base.store, settings, clock=lambda: clock["now"])
        feed = Feed(service)
        sizes = {}
        for day in range(days):
            clock["now"] = (START + timedelta(days=day, hours=12)).timestamp()
            orders = [f"d{day:03d}-{n}" for n in range(per_day)]
            await feed(*(created(o, day) for o in orders), "not json")
            await feed(*(changed(o, day + 0.1) for o in orders), source="changes:0")
            await feed(*(closed(o, day + 0.3) for o in orders))
            await service.prune()
            sizes[day] = {name: count for name, count in (await service.store.counts_by_table()).items()
                          if name in ("notifier_notifications", "notifier_orders", "notifier_dead_letters")}
        counts = await service.store.counts()
    # Flat once the windows are full: the last month looks like the day the window filled.
    assert all(sizes[day] == sizes[days - 1] for day in range(32, days)), {d: sizes[d] for d in (31, 32, 45, 61)}
    # Notifications of the last 30 days; orders closed within them, and those of the day
    # before, closed later on their day than the cut-off; dead letters of the last 15 days.
    assert sizes[days - 1] == {"notifier_notifications": 30 * per_day, "notifier_orders": 31 * per_day,
                               "notifier_dead_letters": 15}
    assert counts == {SENT: 30 * per_day}  # nothing failed, nothing waits
