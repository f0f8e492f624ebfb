"""`backorders serve`, with what only the composition root may wire: readers over the
notifier's and channel-sync's stores for the API's operations routes (the recalculator,
which serves the API, may not import the other services). Their databases may be other
databases or schemas: `--notifier-db` / `--channels-db` (or NOTIFIER_DATABASE_URL /
CHANNEL_SYNC_DATABASE_URL), with their schemas."""

from __future__ import annotations

import os
import time

from backorders_platform.database import make_engine
from recalculator.api.operations import DownstreamReaders
from recalculator.cli import serve


def register(commands) -> None:
    parser = serve.register(commands, readers=readers)
    parser.add_argument("--notifier-db", metavar="URL", default=os.environ.get("NOTIFIER_DATABASE_URL"),
                        help="the notifier's state, for its failed emails and their resend "
                        "(default: $NOTIFIER_DATABASE_URL; none: those routes are absent)")
    parser.add_argument("--notifier-schema", help="its PostgreSQL schema")
    parser.add_argument("--channels-db", metavar="URL", default=os.environ.get("CHANNEL_SYNC_DATABASE_URL"),
                        help="channel-sync's state, for the rows the channels refused "
                        "(default: $CHANNEL_SYNC_DATABASE_URL; none: that route is absent)")
    parser.add_argument("--channels-schema", help="its PostgreSQL schema")


def readers(args) -> DownstreamReaders:
    found = {}
    if args.notifier_db:
        found.update(notifier_readers(args.notifier_db, args.notifier_schema))
    if args.channels_db:
        found["channel_failures"] = channel_failures(args.channels_db, args.channels_schema)
    return DownstreamReaders(**found)


def notifier_readers(url: str, schema: str | None) -> dict:
    from notifier.adapters.store import Store
    from notifier.domain.intake import FAILED

    async def with_store(work):
        db = make_engine(url, schema)
        try:
            return await work(Store(db, schema))
        finally:
            await db.dispose()

    async def failures(limit: int) -> list[dict]:
        rows = await with_store(lambda store: store.notifications(status=FAILED))
        return [{"notification_id": r.notification_id, "order_id": r.order_id, "company_id": r.company_id,
                 "template": r.template, "attempts": r.attempts, "reason": r.last_error} for r in rows[-limit:]]

    async def resend(ids: list[str]) -> list[str]:
        # Queued again in the notifier's own store, from attempt 0: the notifier worker
        # (or `backorders notifier resend`) sends them.
        return await with_store(lambda store: store.requeue_failed(ids=ids, now=time.time()))

    return {"notifier_failures": failures, "notifier_resend": resend}


def channel_failures(url: str, schema: str | None):
    from channel_sync.adapters.store import Store

    async def failures(limit: int) -> list[dict]:
        db = make_engine(url, schema)
        try:
            rows = await Store(db, schema).failures(include_resolved=False, limit=limit)
        finally:
            await db.dispose()
        return [{"seq": r.seq, "channel": r.channel, "sku": r.sku, "kind": r.kind, "status": r.status,
                 "reason": r.body, "attempts": r.attempts, "failed_at": r.failed_at} for r in rows]

    return failures
