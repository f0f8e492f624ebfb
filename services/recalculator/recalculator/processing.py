"""One raw input in, its fate out: parsed, handled by the engine, and turned into output
events or a dead letter. Shared by `replay`, the embedded runtime and (later) Kafka."""

from __future__ import annotations

from dataclasses import dataclass, field

from backorder_events import DeadLetter, InvalidEvent, parse_event

from .domain.engine import Engine
from .domain.model import to_us
from .domain.results import APPLIED, DUPLICATE, REJECTED
from .publishing import dead_letter, output_events


@dataclass(slots=True)
class Processed:
    status: str  # applied, duplicate or rejected
    event_id: str | None = None
    event_type: str | None = None
    outputs: list[dict] = field(default_factory=list)  # CloudEvents
    dead_letter: DeadLetter | None = None
    reason: str | None = None


@dataclass(slots=True)
class Tally:
    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    outputs: int = 0

    def add(self, processed: Processed) -> None:
        if processed.status == APPLIED:
            self.applied += 1
        elif processed.status == DUPLICATE:
            self.duplicates += 1
        else:
            self.dead_lettered += 1
        self.outputs += len(processed.outputs)

    @property
    def total(self) -> int:
        return self.applied + self.duplicates + self.dead_lettered


def read(raw: str | bytes):
    """The event a raw input holds, or the InvalidEvent saying why it holds none."""
    try:
        return parse_event(raw)
    except InvalidEvent as error:
        return error


def event_time(parsed) -> int | None:
    """The time of what `read` gave, in µs, for ordering; None when it could not be read."""
    return None if isinstance(parsed, InvalidEvent) else to_us(parsed.time)


def process(
    engine: Engine,
    raw: str | bytes,
    source: str,
    position: int | None,
    partition: int | None = None,
    parsed=None,
) -> Processed:
    """`parsed`: what `read(raw)` gave, when the runtime has read it already (to order it)."""
    event = read(raw) if parsed is None else parsed
    if isinstance(event, InvalidEvent):
        error = event
        return Processed(
            REJECTED,
            error.event_id,
            error.event_type,
            dead_letter=DeadLetter.from_error(raw, error, source, position, partition),
            reason=error.reason,
        )
    outcome = engine.handle(event)
    if outcome.status == APPLIED:
        return Processed(APPLIED, event.id, event.type, output_events(outcome, event.id, event.time))
    if outcome.status == DUPLICATE:
        return Processed(DUPLICATE, event.id, event.type, reason=outcome.reason)
    record = dead_letter(
        raw, outcome.reason, source, position, event_id=event.id, event_type=event.type,
        partition=partition,
    )
    return Processed(REJECTED, event.id, event.type, dead_letter=record, reason=outcome.reason)
