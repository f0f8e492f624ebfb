"""`backorders replay-topics` and `backorders rebuild`: the input topics, read again."""

from __future__ import annotations

import asyncio
import dataclasses
import json

from backorders_platform.commands import CommandError, add_db_option, database_url, options

from ..kafka.replay import rebuild, replay_topics
from .options import ShardOptions


def register(commands) -> None:
    replay = commands.add_parser(
        "replay-topics", help="replay the input topics into a fresh schema and compare with the live state"
    )
    add_db_option(replay)
    replay.add_argument("--into", required=True, metavar="SCHEMA", help="a new PostgreSQL schema")
    replay.add_argument("--live-schema", help="the schema of the live state (default: the search path)")
    replay.add_argument(
        "--live-shards", type=int, default=0,
        help="the live state is the sharded recalculator's with this many shards, --live-schema its base",
    )
    replay.set_defaults(handler=handle_replay)

    again = commands.add_parser("rebuild", help="rebuild the live state from the input topics")
    add_db_option(again)
    again.add_argument("--schema", help="the schema of the live state (default: the search path)")
    again.add_argument("--yes", action="store_true", help="confirm: the live state is emptied first")
    again.add_argument(
        "--shards", type=int,
        help="the sharded recalculator with this many shards, --schema its base (default: "
             "$BACKORDERS_SHARDS or 0; docs/sharding.md)",
    )
    again.set_defaults(handler=handle_rebuild)


def handle_replay(args) -> int:
    try:
        found = asyncio.run(replay_topics(database_url(args.db), args.into, args.live_schema,
                                          live_shards=args.live_shards))
    except ValueError as error:
        raise CommandError(str(error)) from None
    for difference in found:
        print(json.dumps(dataclasses.asdict(difference), sort_keys=True))
    print(f"{len(found)} orders differ between the live state and the replay into {args.into}")
    return 1 if found else 0


def handle_rebuild(args) -> int:
    if not args.yes:
        raise CommandError("rebuild empties the live state first: add --yes to confirm")
    shards = options(ShardOptions, args, "shards").shards
    if shards:
        from ..kafka.sharded import rebuild as rebuild_sharded

        applied = asyncio.run(rebuild_sharded(database_url(args.db), args.schema or "backorders", shards))
    else:
        applied = asyncio.run(rebuild(database_url(args.db), args.schema))
    print(f"rebuilt: {applied} events applied from the input topics")
    return 0
