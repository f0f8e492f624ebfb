"""Operations routes: lag, the outbox backlog, the dead letters (browse, filter, download
the raw input, re-submit a corrected one as a new event), and, through readers the
composition root gives (the recalculator may not import the other services), the
notifier's failed emails with their resend and channel-sync's refused rows."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from backorder_events.limits import MAX_ID_LENGTH
from backorder_events.outputs import DeadLetter
from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ..adapters import tables as t
from ..adapters.repository import DEAD_LETTER_RELAY_SOURCE, OUTBOX_RELAY_SOURCE
from ..domain.model import from_us
from .actions import SOURCE, WRITE_PROBLEMS, Accepted, Publisher, iso_z
from .auth import Guard

MAX_PAGE = 500
TEXT_FILTER = 200  # the longest reason / type filter taken


@dataclass(frozen=True)
class DownstreamReaders:
    """Reads over the other services' stores, given by the composition root; each None
    when that service is not configured for this API."""

    notifier_failures: Callable[[int], Awaitable[list[dict]]] | None = None
    notifier_resend: Callable[[list[str]], Awaitable[list[str]]] | None = None
    channel_failures: Callable[[int], Awaitable[list[dict]]] | None = None


class Status(BaseModel):
    clock: str | None = Field(description="the business time of the last applied event")
    positions: dict[str, int] = Field(description="how far each input source was applied (offset or line)")
    lag: dict[str, int] | None = Field(description="records not yet applied per `topic:partition`: the topic's end "
                                       "offset from the broker minus the stored position; null without a broker")
    outbox_events: int
    outbox_backlog: int = Field(description="published events the relay has not sent yet")
    dead_letters: int
    dead_letters_not_relayed: int


class OutboxRow(BaseModel):
    seq: int
    event_id: str
    event_type: str
    subject: str
    recorded_at: str | None


class OutboxBacklog(BaseModel):
    relayed_up_to: int
    backlog: int
    items: list[OutboxRow] = Field(description="the oldest rows not yet relayed")


class DeadLetterRow(BaseModel):
    seq: int
    source: str
    position: int | None
    partition: int | None
    event_id: str | None
    event_type: str | None
    reason: str
    raw_escaped: bool
    raw_size: int | None
    recorded_at: str | None
    raw: str | None = Field(default=None, description="the raw input (one dead letter only)")


class DeadLetterPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[DeadLetterRow]


class Resent(BaseModel):
    queued: list[str]


Text = Annotated[str, Query(min_length=1, max_length=TEXT_FILTER, pattern=r"^[^\x00-\x1f\x7f]+$")]
Seq = Annotated[int, Path(ge=1, le=2**62)]


def _iso(us: int | None) -> str | None:
    return None if us is None else iso_z(from_us(us))


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def operations_router(db: AsyncEngine, guard: Guard, publisher: Publisher,
                      lag: Callable[[dict[str, int]], Awaitable[dict[str, int]]] | None,
                      readers: DownstreamReaders) -> APIRouter:
    router = APIRouter(tags=["operations"])
    read = [Depends(guard.reader)]

    async def one_dead_letter(seq: int) -> dict:
        async with db.connect() as conn:
            row = (await conn.execute(select(t.dead_letters).where(t.dead_letters.c.seq == seq))).first()
        if row is None:
            raise HTTPException(404, f"no dead letter {seq}")
        return dict(row._mapping)

    @router.get("/operations/status", response_model=Status, dependencies=read,
                summary="Positions and lag, outbox backlog, dead letters")
    async def status():
        async with db.connect() as conn:
            positions = dict((await conn.execute(select(t.positions.c.source, t.positions.c.position))).all())
            last_seq = (await conn.execute(select(func.max(t.outbox.c.seq)))).scalar() or 0
            dead = (await conn.execute(select(func.count(), func.max(t.dead_letters.c.seq)))).one()
            clock = (await conn.execute(select(t.meta.c.value).where(t.meta.c.key == "clock"))).scalar()
        relayed = positions.get(OUTBOX_RELAY_SOURCE, 0)
        dead_relayed = positions.get(DEAD_LETTER_RELAY_SOURCE, 0)
        not_relayed = 0
        if dead[0]:
            async with db.connect() as conn:
                not_relayed = (await conn.execute(select(func.count()).select_from(t.dead_letters)
                                                  .where(t.dead_letters.c.seq > dead_relayed))).scalar_one()
        found_lag = None
        if lag is not None:
            try:
                found_lag = await lag(positions)
            except Exception as error:  # noqa: BLE001 - the broker's answer is optional here
                raise HTTPException(503, f"the broker did not give its end offsets ({error.__class__.__name__})") from None
        return Status(clock=_iso(int(clock)) if clock and clock.lstrip("-").isdigit() else None,
                      positions=positions, lag=found_lag, outbox_events=last_seq,
                      outbox_backlog=max(0, last_seq - relayed), dead_letters=dead[0],
                      dead_letters_not_relayed=not_relayed)

    @router.get("/operations/outbox", response_model=OutboxBacklog, dependencies=read,
                summary="Published events the relay has not sent yet, oldest first")
    async def outbox(limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50):
        async with db.connect() as conn:
            relayed = (await conn.execute(select(t.positions.c.position)
                                          .where(t.positions.c.source == OUTBOX_RELAY_SOURCE))).scalar() or 0
            count = (await conn.execute(select(func.count()).select_from(t.outbox)
                                        .where(t.outbox.c.seq > relayed))).scalar_one()
            rows = await conn.execute(select(t.outbox.c.seq, t.outbox.c.event_id, t.outbox.c.event_type,
                                             t.outbox.c.subject, t.outbox.c.recorded_at)
                                      .where(t.outbox.c.seq > relayed).order_by(t.outbox.c.seq).limit(limit))
            items = [OutboxRow(seq=r.seq, event_id=r.event_id, event_type=r.event_type, subject=r.subject,
                               recorded_at=_iso(r.recorded_at)) for r in rows]
        return OutboxBacklog(relayed_up_to=relayed, backlog=count, items=items)

    @router.get("/dead-letters", response_model=DeadLetterPage, dependencies=read,
                summary="Refused inputs, newest first, filtered by reason (a part of it) and event type")
    async def dead_letters(
        reason: Text | None = None,
        event_type: Text | None = None,
        source: Text | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
    ):
        d = t.dead_letters
        where = []
        if reason is not None:
            where.append(func.lower(d.c.reason).like(_like(reason.lower()), escape="\\"))
        if event_type is not None:
            where.append(d.c.event_type == event_type)
        if source is not None:
            where.append(d.c.source == source)
        columns = [c for c in d.c if c.name != "raw"]
        async with db.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(d).where(*where))).scalar_one()
            rows = await conn.execute(select(*columns).where(*where).order_by(d.c.seq.desc())
                                      .limit(limit).offset(offset))
            items = [_dead_row(dict(r._mapping)) for r in rows]
        return DeadLetterPage(total=total, limit=limit, offset=offset, items=items)

    @router.get("/dead-letters/{seq}", response_model=DeadLetterRow, dependencies=read,
                summary="One dead letter, with its raw input as stored")
    async def dead_letter(seq: Seq):
        return _dead_row(await one_dead_letter(seq), with_raw=True)

    @router.get("/dead-letters/{seq}/raw", dependencies=read, summary="The raw input of a dead letter, as a download",
                response_class=Response, responses={200: {"content": {"application/octet-stream": {}}}})
    async def dead_letter_raw(seq: Seq):
        row = await one_dead_letter(seq)
        original = DeadLetter.model_validate(row).original()
        return Response(original, media_type="application/octet-stream", headers={
            "Content-Disposition": f'attachment; filename="dead-letter-{seq}.json"',
            "X-Raw-Truncated": "true" if row["raw_size"] is not None else "false",
        })

    @router.post("/dead-letters/{seq}/resubmit", status_code=202, response_model=Accepted,
                 dependencies=[Depends(guard.writer)], responses=WRITE_PROBLEMS,
                 summary="Publish a corrected input as a new event (a new id) to the input log")
    async def resubmit(seq: Seq, corrected: Annotated[dict[str, Any], Body(
            description="the corrected input event (CloudEvents JSON, any input type of the contract); its id is "
            "replaced by a new one, its time kept (now when absent), its source kept (the API's when absent)")]):
        await one_dead_letter(seq)
        event = dict(corrected)
        event["id"] = str(uuid.uuid4())
        event.setdefault("specversion", "1.0")
        event.setdefault("source", SOURCE)
        event.setdefault("time", iso_z(datetime.now(UTC)))
        return await publisher.publish(event, replaces=seq)

    if readers.notifier_failures is not None:
        @router.get("/operations/notifier/failures", dependencies=read,
                    summary="Backorder emails that could not be sent (the notifier's store)")
        async def notifier_failures(limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100) -> list[dict]:
            return await readers.notifier_failures(limit)

    if readers.notifier_resend is not None:
        @router.post("/operations/notifier/resend", response_model=Resent, dependencies=[Depends(guard.writer)],
                     responses=WRITE_PROBLEMS, summary="Queue failed emails again: the notifier sends them")
        async def notifier_resend(ids: Annotated[list[Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH * 4)]],
                                                 Body(embed=True, min_length=1, max_length=1000)]):
            return Resent(queued=await readers.notifier_resend(ids))

    if readers.channel_failures is not None:
        @router.get("/operations/channels/failures", dependencies=read,
                    summary="Rows a channel refused or that could not be delivered, with the reason (channel-sync)")
        async def channel_failures(limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100) -> list[dict]:
            return await readers.channel_failures(limit)

    return router


def _dead_row(row: dict, with_raw: bool = False) -> DeadLetterRow:
    return DeadLetterRow(seq=row["seq"], source=row["source"], position=row["position"], partition=row["partition"],
                         event_id=row["event_id"], event_type=row["event_type"], reason=row["reason"],
                         raw_escaped=bool(row["raw_escaped"]), raw_size=row["raw_size"],
                         recorded_at=_iso(row["recorded_at"]), raw=row["raw"] if with_raw else None)
