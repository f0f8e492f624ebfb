"""The actions of the seed's Manage Orders page (recalculate, mark, mark not, reallocate),
taken through the API: each is published to the runtime's input log as the contract's
command event (input_log.py), never written to the state, so that a replay of the log
stays the truth. The answer (202) names the event that carries the action; the state
shows its effect once the runtime has applied it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
from backorder_events import InvalidEvent
from backorder_events.commands import (
    MarkBackorderData,
    MarkNotBackorderData,
    ReallocateBackorderData,
    RecalculateBackordersData,
)
from backorder_events.envelope import EventId, UtcDatetime
from backorder_events.parse import parse_event
from backorders_platform import logs
from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from .auth import Guard
from .input_log import Appended, InputLog, LogUnavailable

log = logs.get("recalculator.api")

SOURCE = "/backorders/api"  # the CloudEvents source of what the API publishes

WRITE_PROBLEMS = {
    401: {"description": "no bearer token"},
    403: {"description": "a token that is not the API's, or actions disabled (no token configured)"},
    422: {"description": "the body is not a valid event of the contract"},
    503: {"description": "no input log configured, or the log did not take the event (safe to retry with the same id)"},
}


class Envelope(BaseModel):
    """What the caller may set of the event's envelope; the server gives the rest."""

    model_config = ConfigDict(extra="forbid")

    id: EventId | None = Field(default=None, description="the event id (default: a new UUID); "
                               "sending the same id again is applied once")
    time: UtcDatetime | None = Field(default=None, description="the event's business time (default: now, UTC); "
                                     "it places the action among the other inputs")


class RecalculateRequest(Envelope):
    data: RecalculateBackordersData = Field(description="both lists empty: every order")


class MarkRequest(Envelope):
    data: MarkBackorderData


class MarkNotRequest(Envelope):
    data: MarkNotBackorderData


class ReallocateRequest(Envelope):
    data: ReallocateBackorderData


class Accepted(BaseModel):
    """The event that carries what was asked, and where it was published."""

    event_id: str
    event_type: str
    source: str
    time: str
    log: str = Field(description="`kafka` (an input topic) or `file` (the embedded runtime's log)")
    topic: str | None = Field(default=None, description="the topic (Kafka) or the log file (embedded)")
    key: str | None = None
    partition: int | None = None
    position: int | None = Field(default=None, description="the record's offset (Kafka) or the log's line (embedded)")
    replaces: int | None = Field(default=None, description="the dead letter this event corrects")


def iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Publisher:
    """Builds an event, checks it with the contract's parser and appends it to the log."""

    def __init__(self, input_log: InputLog | None, on_append: Callable[[Appended], None] | None = None) -> None:
        self.input_log = input_log
        self.on_append = on_append

    def ready(self) -> InputLog:
        if self.input_log is None:
            raise HTTPException(503, "no input log to publish to: serve with --log FILE (embedded runtime) "
                                "or with KAFKA_BOOTSTRAP_SERVERS (Kafka)")
        return self.input_log

    async def publish(self, event: dict, replaces: int | None = None) -> Accepted:
        input_log = self.ready()
        raw = orjson.dumps(event)
        try:
            parsed = parse_event(raw)  # the contract, exactly as the runtime will read it
        except InvalidEvent as error:
            raise HTTPException(422, f"not a valid event: {error.reason}") from None
        try:
            appended = await input_log.append(raw, event)
        except LogUnavailable as error:
            raise HTTPException(503, f"{error}; nothing is lost by sending event {parsed.id!r} again") from None
        log.info("published", event_id=parsed.id, event_type=parsed.type, log=appended.log, where=appended.where,
                 partition=appended.partition, position=appended.position, replaces=replaces)
        if self.on_append is not None:
            self.on_append(appended)
        return Accepted(event_id=parsed.id, event_type=parsed.type, source=parsed.source, time=iso_z(parsed.time),
                        log=appended.log, topic=appended.where, key=appended.key, partition=appended.partition,
                        position=appended.position, replaces=replaces)


def command_event(event_type: str, request: Envelope) -> dict:
    data = request.data.model_dump(mode="json", exclude_unset=False)
    return {"specversion": "1.0", "id": request.id or str(uuid.uuid4()), "source": SOURCE, "type": event_type,
            "time": iso_z(request.time or datetime.now(UTC)), "datacontenttype": "application/json", "data": data}


def actions_router(guard: Guard, publisher: Publisher) -> APIRouter:
    router = APIRouter(prefix="/actions", tags=["actions"], dependencies=[Depends(guard.writer)],
                       responses=WRITE_PROBLEMS)

    @router.post("/recalculate", status_code=202, response_model=Accepted,
                 summary="Recalculate the backorders of some orders or SKUs (none named: every order)")
    async def recalculate(request: RecalculateRequest):
        return await publisher.publish(command_event("RecalculateBackorders", request))

    @router.post("/mark-backorder", status_code=202, response_model=Accepted,
                 summary="Mark orders as backorders: their backorder quantities are kept as set, no longer calculated")
    async def mark(request: MarkRequest):
        return await publisher.publish(command_event("MarkBackorder", request))

    @router.post("/mark-not-backorder", status_code=202, response_model=Accepted,
                 summary="Mark orders as not backorders")
    async def mark_not(request: MarkNotRequest):
        return await publisher.publish(command_event("MarkNotBackorder", request))

    @router.post("/reallocate", status_code=202, response_model=Accepted,
                 summary="Set the backorder quantity of some lines of one order by hand")
    async def reallocate(request: ReallocateRequest):
        return await publisher.publish(command_event("ReallocateBackorder", request))

    return router
