"""Magento 2: one stock item per SKU through the REST API,

    PUT <url>/rest/V1/products/{sku}/stockItems/{itemId}
    Authorization: Bearer <integration access token>

    {"stockItem": {"qty": 12, "is_in_stock": true, "backorders": 1, "use_config_backorders": false}}

`backorders` and `use_config_backorders` are left out when `send_magento_backorder_tags` is
false (the seed's "Do Not Send BackOrder Tags To Magento"). Each row is its own request with its own answer; when a
row is given up on (the store does not answer), the rest of the batch waits for the next push.
"""

from __future__ import annotations

from urllib.parse import quote

import aiohttp

from ..config import MagentoChannel
from .base import GAVE_UP, Batch, Outcome
from .http import request, send_with_retries


def stock_item_request(row: dict) -> tuple[str, dict]:
    """(path, body) of the PUT for one row (pure: the file sink writes the same)."""
    path = f"/rest/V1/products/{quote(row['sku'], safe='')}/stockItems/{row['itemId']}"
    return path, {"stockItem": row["stockItem"]}


class MagentoSink:
    def __init__(self, name: str, channel: MagentoChannel, session: aiohttp.ClientSession, token: str) -> None:
        self.name = name
        self.channel = channel
        self.session = session
        self.token = token

    async def send(self, batch: Batch) -> list[Outcome]:
        outcomes = []
        for sku, row in batch.rows:
            path, body = stock_item_request(row)
            attempted = await send_with_retries(
                lambda path=path, body=body: request(
                    self.session, "PUT", f"{self.channel.url}{path}", json=body,
                    headers={"Authorization": f"Bearer {self.token}"},
                    timeout=aiohttp.ClientTimeout(total=self.channel.timeout_seconds),
                ),
                self.channel.retry,
            )
            outcomes.append(Outcome(sku, attempted.kind, attempted.status, attempted.body, attempted.attempts))
            if attempted.kind == GAVE_UP:
                break
        return outcomes

    async def close(self) -> None:
        pass
