"""`backorders worker SERVICE`: each service adds its own worker (the recalculator's, and
the notifier's and channel-sync's faust workers)."""

from __future__ import annotations

from channel_sync import cli as channels_cli
from notifier import cli as notifier_cli
from recalculator.cli import worker as recalculator_worker


def register(commands) -> None:
    worker = commands.add_parser("worker", help="run a service worker on Kafka")
    kinds = worker.add_subparsers(dest="service", required=True, metavar="SERVICE")
    recalculator_worker.register_worker(kinds)
    notifier_cli.register_worker(kinds)
    channels_cli.register_worker(kinds)
    recalculator_worker.register(commands)  # `backorders produce`
