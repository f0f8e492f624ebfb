"""One raw input in, its fate out: parsed, handled by the engine, and turned into output
events or a dead letter (or held: a manual action waiting for its orders), together with
what the waiting actions it settled produced. Shared by `replay`, the embedded runtime and
the Kafka worker."""

from __future__ import annotations

from dataclasses import dataclass, field

from backorder_events import DeadLetter, InvalidEvent, parse_event

from .domain.engine import MANUAL_TYPES, Engine
from .domain.model import to_us
from .domain.results import APPLIED, DUPLICATE, HELD, REJECTED, Settled
from .publishing import dead_letter, output_events


@dataclass(slots=True)
class Processed:
    status: str  # applied, duplicate, held or rejected
    event_id: str | None = None
    event_type: str | None = None
    # CloudEvents: the input's own, then those of the waiting manual actions it released
    outputs: list[dict] = field(default_factory=list)
    dead_letter: DeadLetter | None = None
    reason: str | None = None
    # Waiting manual actions settled after this input (held by earlier inputs): how many
    # were applied (their outputs are in `outputs`), and the dead letters of those refused
    # (they waited their whole bound, or failed for another reason once their orders came).
    released: int = 0
    held_dead_letters: list[DeadLetter] = field(default_factory=list)


@dataclass(slots=True)
class Tally:
    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    held: int = 0  # inputs held, waiting for the orders they name
    outputs: int = 0
    released: int = 0  # held actions applied later
    held_dead_lettered: int = 0  # held actions dead-lettered later

    def add(self, processed: Processed) -> None:
        if processed.status == APPLIED:
            self.applied += 1
        elif processed.status == DUPLICATE:
            self.duplicates += 1
        elif processed.status == HELD:
            self.held += 1
        else:
            self.dead_lettered += 1
        self.outputs += len(processed.outputs)
        self.released += processed.released
        self.held_dead_lettered += len(processed.held_dead_letters)

    @property
    def total(self) -> int:
        return self.applied + self.duplicates + self.dead_lettered + self.held


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
    ref = held_reference(raw, source, position, partition) if event.type in MANUAL_TYPES else None
    outcome = engine.handle(event, ref)
    if outcome.status == APPLIED:
        result = Processed(APPLIED, event.id, event.type,
                           output_events(outcome, event.id, event.time))
    elif outcome.status == DUPLICATE:
        result = Processed(DUPLICATE, event.id, event.type, reason=outcome.reason)
    elif outcome.status == HELD:
        result = Processed(HELD, event.id, event.type, reason=outcome.reason)
    else:
        record = dead_letter(
            raw, outcome.reason, source, position, event_id=event.id, event_type=event.type,
            partition=partition,
        )
        result = Processed(REJECTED, event.id, event.type, dead_letter=record, reason=outcome.reason)
    if outcome.settled:
        settle(result, outcome.settled)
    return result


def held_reference(raw: str | bytes, source: str, position: int | None,
                   partition: int | None) -> dict:
    """What the engine keeps with a manual action it holds, to dead-letter it later as it
    would have been at once: the raw input (as text: it was parsed, so it is UTF-8) and where
    it came from. Stored with the state as JSON; `held_event` reads the action back."""
    if not isinstance(raw, str):
        raw = bytes(raw).decode("utf-8", "surrogateescape")
    return {"raw": raw, "source": source, "position": position, "partition": partition}


def held_event(ref: dict):
    """The manual action a stored `held_reference` holds."""
    return parse_event(ref["raw"])


def settle(result: Processed, settled: list[Settled]) -> None:
    """Add to `result` what the waiting actions settled after its input produced: the
    outputs of those applied, the dead letters of those refused."""
    for item in settled:
        outcome = item.outcome
        if outcome.status == APPLIED:
            result.outputs.extend(output_events(outcome, item.event_id, item.time))
            result.released += 1
            continue
        ref = item.ref if isinstance(item.ref, dict) else {}
        result.held_dead_letters.append(dead_letter(
            ref.get("raw", ""), outcome.reason, ref.get("source", ""), ref.get("position"),
            event_id=item.event_id, event_type=item.event_type, partition=ref.get("partition"),
        ))
