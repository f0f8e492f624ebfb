"""`backorders replay EVENTS.jsonl --out OUT.jsonl --dead-letter DLQ.jsonl [--settings FILE]`

Processes a log from an empty state, entirely in memory, in the order the Kafka worker
applies the same events from the input topics (by event time, then topic, key and file
order: `runtime.sequencing`). The same input gives byte-identical output. Exits 0 even when
inputs were dead-lettered; a summary goes to standard error. The retention windows
(`BACKORDERS_DEDUPE_WINDOW`, `BACKORDERS_CLOSED_ORDER_RETENTION`) are the runtimes' own, so
a replay decides what a live run with the same settings decided; so does the wait of a
manual action for its orders (`BACKORDERS_ACTION_WAIT`).
"""

from __future__ import annotations

import sys

from backorders_platform.commands import CommandError

from ..config import RetentionSettings
from ..domain.engine import Engine
from ..processing import Tally, process
from ..publishing import dead_letter_line, to_json
from ..runtime.sequencing import in_log_order
from .common import load_settings
from .summary import one_line


def register(commands) -> None:
    parser = commands.add_parser("replay", help="process an event log from an empty state")
    parser.add_argument("events", help="CloudEvents, one JSON object per line")
    parser.add_argument("--out", required=True, help="where published events are written")
    parser.add_argument("--dead-letter", required=True, help="where refused inputs are written")
    parser.add_argument("--settings", help="initial settings (JSON or TOML mapping)")
    parser.set_defaults(handler=handle)


def replay(events_path: str, out_path: str, dead_letter_path: str, settings=None,
           retention: RetentionSettings | None = None) -> Tally:
    engine = Engine(settings, **(retention or RetentionSettings()).engine_options())
    tally = Tally()
    try:
        source = open(events_path, "rb")
    except OSError as error:
        raise CommandError(f"cannot read {events_path}: {error.strerror}") from None
    with source, open(out_path, "w", encoding="utf-8", newline="\n") as out, open(
        dead_letter_path, "w", encoding="utf-8", newline="\n"
    ) as dead:
        lines = ((number, raw.rstrip(b"\r\n")) for number, raw in enumerate(source, 1))
        # Blank lines carry nothing.
        for item in in_log_order((number, raw) for number, raw in lines if raw.strip()):
            result = process(engine, item.raw, events_path, item.line, parsed=item.parsed)
            tally.add(result)
            for event in result.outputs:
                out.write(to_json(event))
                out.write("\n")
            if result.dead_letter is not None:
                dead.write(dead_letter_line(result.dead_letter))
                dead.write("\n")
            # Manual actions held earlier and refused after this input (they waited their
            # whole bound, or failed once their orders came); those applied are in outputs.
            for letter in result.held_dead_letters:
                dead.write(dead_letter_line(letter))
                dead.write("\n")
    return tally


def handle(args) -> int:
    tally = replay(args.events, args.out, args.dead_letter, load_settings(args.settings))
    print(one_line(tally), file=sys.stderr)
    return 0
