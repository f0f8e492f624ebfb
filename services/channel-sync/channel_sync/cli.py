"""`backorders channels preview|push|failures|dead-letters`, and `backorders worker channel-sync`.

    backorders channels preview CHANNEL [--full] [--limit N] [--json]
    backorders channels push [CHANNEL ...] [--full]
    backorders channels failures [--channel C] [--all] [--limit N] [--json]
    backorders channels dead-letters [--limit N] [--json]

Each reads channel-sync's state in the database (`--db`, `--schema`; by default the
embedded database) and the channel configuration (`--config`, `$CHANNEL_SYNC_CONFIG`, `$BACKORDERS_CHANNELS_CONFIG`,
or the built-in default that writes files under `<data dir>/feeds`).
"""

from __future__ import annotations

from backorders_platform.commands import add_db_option


def register(commands) -> None:
    channels = commands.add_parser("channels", help="channel feeds: preview, push now, failures, dead letters")
    actions = channels.add_subparsers(dest="action", required=True, metavar="ACTION")

    preview = actions.add_parser("preview", help="the rows the next push would send to a channel")
    preview.add_argument("channel")
    preview.add_argument("--full", action="store_true", help="every SKU, not only those changed since the last push")
    preview.add_argument("--limit", type=int, default=None, help="rows to show (default 20, all with --json; 0: all)")
    preview.add_argument("--json", action="store_true", help="one JSON row per line")
    _common(preview)
    preview.set_defaults(handler=_lazy("handle_preview"))

    push = actions.add_parser("push", help="push the changed rows now")
    push.add_argument("channels", nargs="*", metavar="CHANNEL", help="default: every enabled channel")
    push.add_argument("--full", action="store_true", help="look at every SKU again")
    _common(push)
    push.set_defaults(handler=_lazy("handle_push"))

    failures = actions.add_parser("failures", help="rows a channel refused or that could not be delivered")
    failures.add_argument("--channel")
    failures.add_argument("--all", action="store_true", help="also those resolved by a later accepted row")
    failures.add_argument("--limit", type=int, default=50)
    failures.add_argument("--json", action="store_true", help="one JSON object per line")
    _common(failures)
    failures.set_defaults(handler=_lazy("handle_failures"))

    dead = actions.add_parser("dead-letters", help="records channel-sync could not take in, with why")
    dead.add_argument("--limit", type=int, default=None, help="only the latest N")
    dead.add_argument("--json", action="store_true", help="one JSON object per line")
    _common(dead)
    dead.set_defaults(handler=_lazy("handle_dead_letters"))


def _common(parser) -> None:
    add_db_option(parser)
    parser.add_argument("--schema", help="PostgreSQL schema holding the state")
    parser.add_argument(
        "--config", help="channel configuration (TOML); default $CHANNEL_SYNC_CONFIG, $BACKORDERS_CHANNELS_CONFIG or built-in"
    )


def register_worker(kinds) -> None:
    """`backorders worker channel-sync`: added to the `worker` command's services."""
    parser = kinds.add_parser("channel-sync", help="channel-sync on Kafka (faust-streaming worker)")
    parser.add_argument("--loglevel", help="faust's log level (default: $BACKORDERS_LOG_LEVEL or warning)")
    parser.set_defaults(handler=_lazy("handle_worker"))


def _lazy(name: str):
    """The commands' code (and what it imports: SQLAlchemy, aiohttp) is loaded only when
    one of them runs, so the `backorders` command starts fast."""

    def handler(args) -> int:
        from . import commands

        return getattr(commands, name)(args)

    return handler
