"""Overstock: an inventory feed of SKU, quantity, quantity on order and ETA, sent as CSV.

    POST <url>
    Authorization: Bearer <api key>
    Content-Type: text/csv

    SKU,Quantity,QuantityOnOrder,ETA
    CAT-HAMMOCK-0001,12,48,2025-05-14
    DOG-BED-0002,0,0,

One request per batch; ETA is the date a unit ordered now becomes available (ISO date,
empty when there is none). A 2xx answer accepts the whole batch.
"""

from __future__ import annotations

import csv
import io

import aiohttp

from ..config import OverstockChannel
from .base import Batch, Outcome, for_all
from .http import request, send_with_retries

COLUMNS = ("SKU", "Quantity", "QuantityOnOrder", "ETA")


def csv_body(rows: list[dict]) -> str:
    """The feed for a batch of rows (pure: the file sink writes the same)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([row["sku"], row["quantity"], row["quantityOnOrder"], row["eta"] or ""])
    return out.getvalue()


class OverstockSink:
    def __init__(self, name: str, channel: OverstockChannel, session: aiohttp.ClientSession, api_key: str) -> None:
        self.name = name
        self.channel = channel
        self.session = session
        self.api_key = api_key

    async def send(self, batch: Batch) -> list[Outcome]:
        body = csv_body([row for _, row in batch.rows]).encode()
        attempted = await send_with_retries(
            lambda: request(
                self.session, "POST", self.channel.url, data=body,
                headers={"Authorization": f"Bearer {self.api_key}", "Content-Type": "text/csv"},
                timeout=aiohttp.ClientTimeout(total=self.channel.timeout_seconds),
            ),
            self.channel.retry,
        )
        return for_all(batch, attempted.kind, attempted.status, attempted.body, attempted.attempts)

    async def close(self) -> None:
        pass
