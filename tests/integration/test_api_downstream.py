"""The operations routes over the other services' stores, wired by the composition root
(the recalculator may not import them): the notifier's failed emails and their resend (queued
again in the notifier's own store), channel-sync's refused rows with their reason. Each
service's database apart from the recalculator's, as they may be deployed."""

from __future__ import annotations

import argparse

import httpx
from backorders_app.api import readers
from backorders_platform.database import make_engine, sqlite_url
from channel_sync.adapters import tables as ct
from channel_sync.adapters.store import Store as ChannelStore
from notifier.adapters import tables as nt
from notifier.adapters.store import Store as NotifierStore
from recalculator.api.app import create_app
from recalculator.api.auth import Guard
from recalculator.api.wiring import Services
from recalculator.runtime.embedded import EmbeddedRuntime

TOKEN = "downstream-token"


async def _seed(notifier_url: str, channels_url: str) -> None:
    db = make_engine(notifier_url)
    try:
        await NotifierStore(db).create_schema()
        async with db.begin() as conn:
            for n, status in enumerate(("failed", "sent", "failed"), 1):
                await conn.execute(nt.notifications.insert().values(
                    notification_id=f"n{n}", event_id=f"e{n}", order_id=f"o{n}", company_id="c", template="t",
                    status=status, event_time=0, change="{}", attempts=5, last_error=f"550 refused {n}"))
    finally:
        await db.dispose()
    db = make_engine(channels_url)
    try:
        await ChannelStore(db).create_schema()
        async with db.begin() as conn:
            await conn.execute(ct.failures.insert().values(
                channel="wayfair", sku="SKU-1", kind="rejected", status=400, body="quantity must be >= 0",
                row="{}", attempts=1, batch=1, failed_at="2025-05-01T00:00:00Z", resolved=False))
    finally:
        await db.dispose()


async def test_notifier_failures_resend_and_channel_refusals(tmp_path):
    url = sqlite_url(tmp_path / "state.sqlite")
    notifier_url, channels_url = sqlite_url(tmp_path / "notifier.sqlite"), sqlite_url(tmp_path / "channels.sqlite")
    async with EmbeddedRuntime(url):
        pass
    await _seed(notifier_url, channels_url)
    args = argparse.Namespace(notifier_db=notifier_url, notifier_schema=None, channels_db=channels_url,
                              channels_schema=None)
    app = create_app(url, services=Services(guard=Guard(TOKEN.encode()), readers=readers(args)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        failed = (await http.get("/operations/notifier/failures")).json()
        assert [(f["notification_id"], f["reason"]) for f in failed] == [("n1", "550 refused 1"), ("n3", "550 refused 3")]
        assert (await http.post("/operations/notifier/resend", json={"ids": ["n1"]})).status_code == 401
        resent = await http.post("/operations/notifier/resend", json={"ids": ["n1", "n2"]},
                                 headers={"Authorization": f"Bearer {TOKEN}"})
        assert resent.status_code == 200 and resent.json() == {"queued": ["n1"]}  # n2 was sent: not failed
        assert [f["notification_id"] for f in (await http.get("/operations/notifier/failures")).json()] == ["n3"]
        refused = (await http.get("/operations/channels/failures")).json()
        assert [(r["channel"], r["sku"], r["reason"]) for r in refused] == [("wayfair", "SKU-1", "quantity must be >= 0")]
        page = await http.get("/console/operations")
        assert "550 refused 3" in page.text and "quantity must be &gt;= 0" in page.text
    await app.state.db.dispose()
    db = make_engine(notifier_url)
    try:
        async with db.connect() as conn:
            statuses = dict((await conn.execute(nt.notifications.select().with_only_columns(
                nt.notifications.c.notification_id, nt.notifications.c.status))).all())
    finally:
        await db.dispose()
    assert statuses == {"n1": "queued", "n2": "sent", "n3": "failed"}


async def test_without_the_other_stores_their_routes_are_absent(tmp_path):
    url = sqlite_url(tmp_path / "state.sqlite")
    async with EmbeddedRuntime(url):
        pass
    args = argparse.Namespace(notifier_db=None, notifier_schema=None, channels_db=None, channels_schema=None)
    app = create_app(url, services=Services(readers=readers(args)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        assert (await http.get("/operations/notifier/failures")).status_code == 404
        assert "Not configured" in (await http.get("/console/operations")).text
    await app.state.db.dispose()
