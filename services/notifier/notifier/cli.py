"""`backorders notifier validate|preview|failed|resend` and `backorders worker notifier`:
the arguments. The commands themselves are in `commands.py`, imported when one runs, so
that the `backorders` command starts as fast as it did without them."""

from __future__ import annotations

from importlib import import_module

from backorders_platform.commands import add_db_option

CONFIG_ENV = "BACKORDERS_NOTIFIER_CONFIG"  # = config.CONFIG_ENV (not imported: this module stays light)


def _lazy(name: str):
    def handler(args):
        return getattr(import_module("notifier.commands"), name)(args)

    return handler


def register(commands) -> None:
    parser = commands.add_parser("notifier", help="backorder emails: check the configuration, preview, failed, dead letters, resend")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    validate = actions.add_parser("validate", help="check the configuration file")
    _config_option(validate)
    validate.add_argument("--strict", action="store_true", help="warnings (e.g. a template without profile) fail too")
    validate.set_defaults(handler=_lazy("handle_validate"))

    preview = actions.add_parser("preview", help="render the email of an order without sending it")
    preview.add_argument("order_id")
    _config_option(preview)
    _db_options(preview)
    preview.add_argument("--notification", metavar="NOTIFICATION_ID",
                         help="the recorded notification of the order to render (default: its latest, or "
                              "else its last BackorderChanged if that marked it as a backorder)")
    preview.add_argument("--template", help="template to render (default: the notification's, or the one "
                                            "assigned to the order's company)")
    preview.add_argument("--part", choices=("message", "text", "html"), default="message",
                         help="the whole message as sent (default), or one body")
    preview.set_defaults(handler=_lazy("handle_preview"))

    failed = actions.add_parser("failed", help="list the notifications that could not be sent")
    _db_options(failed)
    failed.add_argument("--jsonl", action="store_true", help="one JSON record per line")
    failed.set_defaults(handler=_lazy("handle_failed"))

    dead = actions.add_parser("dead-letters", help="list the records the notifier could not take in, with why")
    _db_options(dead)
    dead.add_argument("--jsonl", action="store_true", help="one JSON record per line")
    dead.add_argument("--limit", type=int, default=None, help="only the latest N")
    dead.set_defaults(handler=_lazy("handle_dead_letters"))

    resend = actions.add_parser("resend", help="send failed notifications again")
    resend.add_argument("notification_ids", nargs="*", metavar="NOTIFICATION_ID")
    resend.add_argument("--order", help="the failed notifications of this order")
    resend.add_argument("--all", action="store_true", help="every failed notification")
    resend.add_argument("--wait-for-retries", type=float, default=60.0,
                        help="seconds to wait for retries of transient failures (default 60)")
    _config_option(resend)
    _db_options(resend)
    resend.set_defaults(handler=_lazy("handle_resend"))


def register_worker(kinds) -> None:
    """`backorders worker notifier`: added to the `worker` command's services."""
    worker = kinds.add_parser("notifier", help="the notifier on Kafka (a faust-streaming worker)")
    add_db_option(worker)
    worker.add_argument("--schema", help="PostgreSQL schema holding the state (default: the search path)")
    _config_option(worker)
    worker.add_argument("--group", help="consumer group (default: backorders-notifier)")
    worker.add_argument("--loglevel", default="warn", choices=("crit", "error", "warn", "info", "debug"),
                        help="faust's log level (default: warn)")
    worker.set_defaults(handler=_lazy("handle_worker"))


def _config_option(parser) -> None:
    parser.add_argument("--config", help=f"notifier configuration (TOML; default: ${CONFIG_ENV} or the built-in one)")


def _db_options(parser) -> None:
    add_db_option(parser)
    parser.add_argument("--schema", help="PostgreSQL schema holding the state")


