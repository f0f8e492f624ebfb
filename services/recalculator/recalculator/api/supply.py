"""One SKU's supply on its way, arrival by arrival (the open purchase-order lines and the
containers the state holds for it), for the console's chart of incoming supply by date."""

from __future__ import annotations

import json
from typing import Annotated

from backorder_events.limits import MAX_SKU_LENGTH
from fastapi import APIRouter, Path
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from ..adapters import tables as t
from ..adapters.codec import incoming_from_doc
from .views import day


class Arrival(BaseModel):
    kind: str = Field(description="`po` (a purchase-order line) or `container`")
    id: str = Field(description="the PO or container id")
    qty: int = Field(description="open quantity")
    date: str | None = Field(description="expected date; null when the PO line has none")


class Supply(BaseModel):
    sku: str
    counted: str = Field(description="which arrivals are the SKU's incoming supply: `po` or `container` "
                         "(the setting use_shipping_containers_for_po)")
    arrivals: list[Arrival] = Field(description="open arrivals, soonest first, undated last")


def supply_router(db: AsyncEngine) -> APIRouter:
    router = APIRouter(tags=["products"])

    @router.get("/skus/{sku}/supply", response_model=Supply,
                summary="The SKU's open purchase-order lines and containers by expected date")
    async def supply(sku: Annotated[str, Path(max_length=MAX_SKU_LENGTH, pattern=r"^[^\x00-\x1f\x7f]+$")]):
        async with db.connect() as conn:
            doc = (await conn.execute(select(t.incoming.c.doc).where(t.incoming.c.sku == sku))).scalar()
            settings = (await conn.execute(select(t.settings.c.doc))).scalar()
        containers = bool(settings and json.loads(settings).get("use_shipping_containers_for_po"))
        arrivals: list[tuple] = []
        if doc is not None:
            incoming = incoming_from_doc(doc)
            for po_id, po in incoming.pos.items():
                for open_qty, eta in po.lines:
                    if open_qty > 0:
                        arrivals.append(("po", po_id, open_qty, eta))
            for container_id, (qty, eta) in incoming.containers.items():
                if qty > 0:
                    arrivals.append(("container", container_id, qty, eta))
        arrivals.sort(key=lambda a: (a[3] is None, a[3] or 0, a[0], a[1]))
        return Supply(sku=sku, counted="container" if containers else "po",
                      arrivals=[Arrival(kind=k, id=i, qty=q, date=day(e)) for k, i, q, e in arrivals])

    return router
