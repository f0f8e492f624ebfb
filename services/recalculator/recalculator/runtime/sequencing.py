"""A finite log (a file, standard input, a generated day) in the order the Kafka worker
applies the same events from the input topics: each event goes to the topic and key that
`backorders produce` gives it (`InputTopics.route`), and `ordering.file_order` sorts by
effective time, then topic rank, then key, keeping the file's order among equals."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from backorder_events.topics import InputTopics

from ..ordering import file_order, topic_ranks
from ..processing import event_time, read


@dataclass(frozen=True, slots=True)
class Sequenced:
    line: int  # where it was in the log (a file line, or the caller's number)
    raw: str | bytes
    parsed: object  # what `processing.read` gave


def in_log_order(records: Iterable[tuple[int, str | bytes]], topics: InputTopics | None = None) -> list[Sequenced]:
    topics = topics or InputTopics()
    ranks = topic_ranks(topics)
    entries = []
    for line, raw in records:
        parsed = read(raw)
        try:
            decoded = json.loads(raw)
        except (ValueError, TypeError, RecursionError):
            decoded = None
        topic, key = topics.route(decoded)
        entries.append((event_time(parsed), ranks[topic], (key or "").encode(), Sequenced(line, raw, parsed)))
    return file_order(entries)
