"""`backorders`: the command line of the three services, assembled."""

from __future__ import annotations

import argparse
import sys

from backorders_platform import logs
from backorders_platform.commands import CommandError
from backorders_platform.schema_names import InvalidSchemaName
from channel_sync import cli as channels_cli
from notifier import cli as notifier_cli
from recalculator.cli import dead_letters, explain, relay, replay, search, status, topics
from recalculator.runtime.tuning import tune_collector

from . import api, run, worker


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backorders", description="Event-driven backorder allocation for multichannel sellers."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (replay, run, search, explain, api, dead_letters, relay, worker, status, topics,
                   notifier_cli, channels_cli):
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    tune_collector()
    logs.configure()
    try:
        return args.handler(args) or 0
    except (CommandError, InvalidSchemaName) as error:
        print(f"backorders {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
