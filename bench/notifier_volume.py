"""Backorder emails per order over a generated day, as a new user gets them: the example
configuration (deploy/notifier.example.toml) with its SMTP profile pointed at an aiosmtpd
server on 127.0.0.1, the day of `backorders run` through the embedded recalculator and the
embedded notifier. Counts what the server received, per order (through each message's
Message-ID, which names its notification). Not a test: `tests/integration/test_notifier_volume.py`
asserts the bound on a smaller day.

    python -m bench.notifier_volume [--orders 5000] [--skus 300] [--seed 42] [--set cooldown_minutes=0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import tempfile
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from backorders_app.downstream import notify
from backorders_platform.database import make_engine, sqlite_url
from backorders_workload import WorkloadShape, generate_day
from notifier.adapters.store import Store
from notifier.config import NotifierConfig, from_mapping
from recalculator.publishing import to_json
from recalculator.runtime.embedded import EmbeddedRuntime

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "notifier.example.toml"
DAY_US = 86_400_000_000


@dataclass
class _Inbox:
    """aiosmtpd handler keeping the Message-ID of every message it accepted."""

    message_ids: list[str] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):
        for line in envelope.content.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                self.message_ids.append(line.split(b":", 1)[1].strip().decode())
                break
        return "250 Message accepted for delivery"


@dataclass(frozen=True)
class Volume:
    emails: int  # received by the server
    orders: int  # orders that received at least one
    most: int  # emails of the order that received the most
    most_in_a_day: int  # the most any order received within 24 h of business time
    distribution: dict[int, int]  # emails per order -> orders


def example_config(port: int, **notifier_settings) -> NotifierConfig:
    """The example file, its `main` profile sent to 127.0.0.1:`port` without TLS or AUTH."""
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["profiles"]["main"] = {"type": "smtp", "host": "127.0.0.1", "port": port, "security": "none",
                                "timeout_seconds": 10}
    data["notifier"].update(notifier_settings)
    return from_mapping(data, f"{EXAMPLE} (profile main: 127.0.0.1:{port})", base=EXAMPLE.parent)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _run(folder: Path, records, config: NotifierConfig) -> dict[str, tuple[str, int]]:
    url = sqlite_url(folder / "day.sqlite")
    async with EmbeddedRuntime(url) as runtime:
        await runtime.consume("generated", records)
    await notify(url, records, "generated", data_dir=folder, config=config)
    db = make_engine(url)
    try:
        rows = await Store(db).notifications()
    finally:
        await db.dispose()
    return {row.message_id: (row.order_id, row.event_time) for row in rows if row.message_id}


def measure(seed: int = 42, orders: int = 5000, skus: int = 300, **notifier_settings) -> Volume:
    events = generate_day(seed, WorkloadShape(orders=orders, skus=skus))
    records = [(n, e["__raw__"] if "__raw__" in e else to_json(e)) for n, e in enumerate(events, 1)]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        config = example_config(controller.port, **notifier_settings)
        with tempfile.TemporaryDirectory() as folder:
            sent = asyncio.run(_run(Path(folder), records, config))
    finally:
        controller.stop()
    times: dict[str, list[int]] = {}
    for message_id in inbox.message_ids:
        order_id, at = sent[message_id]
        times.setdefault(order_id, []).append(at)
    per_order = {order: len(at) for order, at in times.items()}
    return Volume(
        emails=len(inbox.message_ids),
        orders=len(per_order),
        most=max(per_order.values(), default=0),
        most_in_a_day=max((_most_within(sorted(at), DAY_US) for at in times.values()), default=0),
        distribution=dict(sorted(Counter(per_order.values()).items())),
    )


def _most_within(times: list[int], window: int) -> int:
    """The most of these sorted times that fall within one `window`."""
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--skus", type=int, default=300)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=JSON",
                        help="a [notifier] setting over the example's (e.g. cooldown_minutes=0)")
    args = parser.parse_args()
    settings = {name: json.loads(value) for name, value in (item.split("=", 1) for item in args.set)}
    volume = measure(args.seed, args.orders, args.skus, **settings)
    print(f"seed {args.seed}, {args.orders} orders, {args.skus} SKUs, example configuration {settings or ''}")
    print(f"  emails received: {volume.emails} by {volume.orders} orders")
    print(f"  most emails to one order: {volume.most} (within 24 h: {volume.most_in_a_day})")
    print(f"  orders by emails received: {volume.distribution}")


if __name__ == "__main__":
    main()
