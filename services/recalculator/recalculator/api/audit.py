"""The replay audit of the console's consistency page: the state rebuilt from the log
against the live state, order by order (`kafka/replay.differences`, as
`backorders replay-topics` reports them).

On Kafka the input topics are consumed from the beginning into a fresh PostgreSQL schema,
dropped afterwards (`replay_topics`). On the embedded runtime the logs the state names in
its positions are replayed in memory, each up to the line stored for it, in the order the
runtime applies them (`in_log_order`); a log that cannot be read again (a generated day,
standard input, a file gone) is named, and then nothing is compared: orders missing from
the replay would all look different."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from backorder_events.topics import InputTopics
from backorders_platform.database import make_engine
from backorders_platform.kafka_settings import KafkaSettings

from ..adapters.repository import DEAD_LETTER_RELAY_SOURCE, OUTBOX_RELAY_SOURCE, Repository
from ..domain.engine import Engine
from ..kafka.replay import differences
from ..processing import process
from ..runtime.followed_log import file_records
from ..runtime.sequencing import in_log_order

# A source name the state keeps → its records, or None when it cannot be read again.
SourceReader = Callable[[str], Iterable[tuple[int, bytes]] | None]


def read_file_source(source: str) -> Iterable[tuple[int, bytes]] | None:
    path = Path(source)
    return file_records(path) if path.is_absolute() and path.is_file() else None


async def audit(url: str, schema: str | None, *, log_file: Path | None = None, kafka: bool = False,
                read_source: SourceReader = read_file_source, kafka_settings: KafkaSettings | None = None,
                topics: InputTopics | None = None) -> dict:
    """With `kafka` (and no log file): the input topics (`topics`, default from the
    environment) replayed against the live state; else the embedded runtime's logs."""
    if kafka and log_file is None:
        return await _audit_topics(url, schema, kafka_settings, topics)
    return await _audit_logs(url, schema, read_source)


async def _audit_topics(url: str, schema: str | None, kafka: KafkaSettings | None,
                        topics: InputTopics | None) -> dict:
    from backorders_platform.migrations import drop_schema

    from ..kafka.replay import replay_topics

    into = f"audit_{uuid.uuid4().hex[:12]}"
    try:
        found = await replay_topics(url, into, schema, kafka, topics)
    finally:
        await drop_schema(url, into)
    return {"replayed_from": ["the input topics"], "not_replayable": [],
            "differences": [dataclasses.asdict(d) for d in found]}


async def _audit_logs(url: str, schema: str | None, read_source: SourceReader) -> dict:
    db = make_engine(url, schema)
    try:
        repository = Repository(db, schema)
        live = Engine()
        await repository.load(live)
        positions = await repository.positions()
    finally:
        await db.dispose()
    sources = {s: p for s, p in positions.items() if s not in (OUTBOX_RELAY_SOURCE, DEAD_LETTER_RELAY_SOURCE)}
    logs, missing = [], []
    for source, upto in sorted(sources.items()):
        read = read_source(source)
        if read is None:
            missing.append(source)
            continue
        kept = [(source, line, raw) for line, raw in read if line <= upto]
        logs.append((_first_time(kept), source, kept))
    # One log, the logs one after the other in the order their events start (the day before
    # the actions taken on it): `in_log_order` keeps the order of the commands within the
    # log, as a topic partition does, so the order of the logs matters.
    logs.sort()
    records = [record for _, _, kept in logs for record in kept]
    replayed = [source for _, source, _ in logs]
    if missing or not replayed:
        return {"replayed_from": replayed, "not_replayable": missing, "differences": None}
    engine = Engine(**_retention())
    numbered = {n: (source, line) for n, (source, line, _raw) in enumerate(records, 1)}
    for item in in_log_order((n, raw) for n, (_s, _l, raw) in enumerate(records, 1)):
        source, line = numbered[item.line]
        process(engine, item.raw, source, line, parsed=item.parsed)
    return {"replayed_from": replayed, "not_replayable": [],
            "differences": [dataclasses.asdict(d) for d in differences(live, engine)]}


def _retention() -> dict:
    from ..config import RetentionSettings

    return RetentionSettings().engine_options()


def _first_time(records: list[tuple[str, int, bytes]]) -> str:
    for _source, _line, raw in records:
        try:
            found = json.loads(raw).get("time")
        except (ValueError, AttributeError):
            continue
        if isinstance(found, str):
            return found
    return ""
