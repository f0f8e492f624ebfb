"""The `backorders notifier` commands (arguments in `cli.py`): the configuration checked,
a template rendered for an order without sending, the failed notifications listed and sent
again, and the Kafka worker started."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from backorders_platform import schema_names
from backorders_platform.commands import CommandError, database_url
from backorders_platform.database import make_engine
from backorders_platform.settings import StorageSettings
from rich.console import Console
from rich.table import Table

from .adapters.store import Store
from .config import CONFIG_ENV, ConfigError, NotifierConfig
from .configured import configured_path, load_configured
from .domain.intake import FAILED, STATUSES
from .domain.message import MessageError
from .domain.rules import SLIP_SCENARIO, is_marked_backorder, notification_id
from .service import NotifierService, build_message


def load_config(path: str | None) -> NotifierConfig:
    try:
        return load_configured(path, data_dir=StorageSettings().data_dir)
    except ConfigError as error:
        raise CommandError(str(error)) from None


def handle_validate(args) -> int:
    config = load_config(args.config)
    warnings = config.warnings()
    print(f"{config.source}: {len(config.profiles)} profiles, {len(config.templates)} templates, "
          f"{len(config.companies)} companies")
    for name, profile in sorted(config.profiles.items()):
        where = (f"{profile.host}:{profile.effective_port} ({profile.security})" if profile.type == "smtp"
                 else str(profile.directory))
        print(f"  profile {name}: {profile.type} {where}")
    for company_id in sorted(config.companies):
        policy = config.assignment(company_id)
        if policy is not None:
            cool = f", cool-down {policy.cool_down.minutes:g} min" if policy.cool_down.minutes else ""
            slips = f", {SLIP_SCENARIO} -> {policy.slip_template}" if policy.slip_template else ""
            print(f"  company {company_id}: EmailCustomerForBackOrder -> {policy.template}{slips}{cool}")
    for warning in warnings:
        print(f"warning: {warning}")
    if warnings and args.strict:
        return 1
    return 0


async def _with_store(args, work):
    db = make_engine(database_url(args.db), args.schema)
    try:
        store = Store(db, args.schema)
        await store.create_schema()
        return await work(store)
    finally:
        await db.dispose()


def handle_preview(args) -> int:
    config = load_config(args.config)

    async def work(store: Store):
        facts = await store.facts([args.order_id])
        return facts, await store.notifications(order_id=args.order_id)

    facts, recorded = asyncio.run(_with_store(args, work))
    order = facts.get(args.order_id)
    notification, change_data, event_time, company_id, assigned = _what_to_preview(args, order, recorded)
    name = args.template or assigned
    if name is None:
        policy = config.assignment(company_id)
        if policy is None:
            raise CommandError(f"company {company_id!r} has no template assigned; name one with --template")
        name = policy.template
    template = config.templates.get(name)
    if template is None:
        raise CommandError(f"template {name!r} is not defined in {config.source}")
    try:
        message = build_message(config, template, notification, args.order_id, company_id,
                                change_data, event_time, facts)
    except MessageError as error:
        raise CommandError(str(error)) from None
    if args.part == "message":
        sys.stdout.write(message.data.decode("utf-8", errors="replace").replace("\r\n", "\n"))
        print(f"\n(envelope: from {message.sender} to {', '.join(message.recipients)}; profile "
              f"{template.profile or '(none)'}; not sent)", file=sys.stderr)
    else:
        if (template.text if args.part == "text" else template.html) is None:
            raise CommandError(f"template {name!r} has no {args.part} body")
        sys.stdout.write(_body(message.data, "plain" if args.part == "text" else "html"))
    for row in recorded:
        print(f"(notification {row.notification_id}: {row.status}"
              f"{'; ' + row.last_error if row.last_error else ''})", file=sys.stderr)
    return 0


def _what_to_preview(args, order, recorded) -> tuple[str, dict, int, str, str | None]:
    """The change to render — `(notification id, change data, event time µs, company id,
    its template or None)`: the notification named, else the order's latest recorded one
    (what was or will be sent), else its last BackorderChanged if that one marked it as a
    backorder. A change that sends no email (Full -> None, Partial -> Full) is never shown."""
    if args.notification or recorded:
        if args.notification:
            chosen = next((r for r in recorded if r.notification_id == args.notification), None)
            if chosen is None:
                raise CommandError(f"order {args.order_id} has no notification {args.notification}")
        else:
            chosen = recorded[-1]  # by the change's business time
        return (chosen.notification_id, json.loads(chosen.change), chosen.event_time, chosen.company_id,
                chosen.template)
    if order is None or order.last_change is None:
        raise CommandError(f"order {args.order_id}: no BackorderChanged taken in for it yet")
    change = order.last_change
    data = change["data"]
    if not is_marked_backorder(data.get("previous_status", ""), data.get("status", "")):
        raise CommandError(
            f"order {args.order_id}: no notification is recorded for it, and its last BackorderChanged "
            f"({data.get('previous_status')} -> {data.get('status')}) sends no email")
    moment = datetime.fromisoformat(change["time"]).astimezone(UTC)
    event_time = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    return notification_id(change["id"]), data, event_time, data["company_id"], None


def _body(data: bytes, subtype: str) -> str:
    from email import message_from_bytes

    for part in message_from_bytes(data).walk():
        if part.get_content_type() == f"text/{subtype}":
            return part.get_payload(decode=True).decode("utf-8").replace("\r\n", "\n")
    return ""


def handle_failed(args) -> int:
    async def work(store: Store):
        return await store.notifications(status=FAILED), await store.counts()

    rows, counts = asyncio.run(_with_store(args, work))
    if args.jsonl:
        for row in rows:
            print(json.dumps({
                "notification_id": row.notification_id, "order_id": row.order_id, "company_id": row.company_id,
                "template": row.template, "event_id": row.event_id, "attempts": row.attempts,
                "reason": row.last_error, "message_id": row.message_id,
            }))
        return 0
    table = Table(title=f"Failed notifications ({len(rows)})")
    for column in ("notification", "order", "company", "template", "attempts", "reason"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row.notification_id, row.order_id, row.company_id, row.template, str(row.attempts),
                      row.last_error or "")
    console = Console()
    console.print(table)
    console.print("by status: " + ", ".join(f"{s} {counts.get(s, 0)}" for s in STATUSES))
    return 0


def handle_dead_letters(args) -> int:
    async def work(store: Store):
        return await store.dead_letters(args.limit)

    rows = asyncio.run(_with_store(args, work))
    if args.jsonl:
        for row in rows:
            print(json.dumps({
                "seq": row.seq, "source": row.source, "position": row.position, "event_id": row.event_id,
                "event_type": row.event_type, "reason": row.reason, "raw": row.raw,
                "recorded_at": datetime.fromtimestamp(row.recorded_at, UTC).isoformat(timespec="seconds"),
            }))
        return 0
    table = Table(title=f"Dead letters ({len(rows)})")
    for column in ("when", "source", "position", "event", "reason", "raw"):
        table.add_column(column, overflow="fold")
    for row in rows:
        event = " ".join(part for part in (row.event_type, row.event_id) if part)
        table.add_row(datetime.fromtimestamp(row.recorded_at, UTC).strftime("%Y-%m-%d %H:%M:%S"), row.source,
                      str(row.position), event, row.reason.splitlines()[0][:300] if row.reason else "",
                      row.raw[:120])
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    return 0


def handle_resend(args) -> int:
    if not (args.notification_ids or args.order or args.all):
        raise CommandError("name the notifications to resend, or --order ORDER_ID, or --all")
    config = load_config(args.config)

    async def work(store: Store):
        service = NotifierService(store, config)
        chosen = await store.requeue_failed(ids=args.notification_ids, order_id=args.order, now=service.clock())
        tally = await service.deliver_all(wait_for_retries=args.wait_for_retries)
        still = await store.notifications(status=FAILED)
        return chosen, tally, [r for r in still if r.notification_id in set(chosen)]

    chosen, tally, still_failed = asyncio.run(_with_store(args, work))
    print(f"queued again: {len(chosen)}; delivered: {tally.delivered}; failed: {len(still_failed)}")
    for row in still_failed:
        print(f"  {row.notification_id} (order {row.order_id}): {row.last_error}")
    return 1 if still_failed else 0


def handle_worker(args) -> int:
    """Checks the configuration, then becomes `faust -A notifier.kafka_app worker`."""
    config_path = configured_path(args.config)
    load_config(config_path)  # readable errors here rather than in faust's start-up
    data_dir = StorageSettings().data_dir
    env = {"BACKORDERS_DATABASE_URL": database_url(args.db)}
    if args.schema:
        env["BACKORDERS_SCHEMA_NAME"] = schema_names.checked(args.schema)  # refused here, not in faust
    if config_path:
        env[CONFIG_ENV] = str(Path(config_path).resolve())
    if args.group:
        env["BACKORDERS_NOTIFIER_GROUP"] = args.group
    os.environ.update(env)
    faust_dir = data_dir / "faust-notifier"
    faust_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "faust", "--datadir", str(faust_dir), "-A", "notifier.kafka_app",
               "worker", "--loglevel", args.loglevel]
    sys.stdout.flush()
    os.execv(sys.executable, command)
    return 0  # not reached
