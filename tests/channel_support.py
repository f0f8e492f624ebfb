"""Helpers of the channel-sync tests: the events it takes in, and a real HTTP server on
127.0.0.1 standing in for Wayfair (OAuth token endpoint and GraphQL), Overstock and
Magento 2, which records every request and answers as a test scripts it."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

from aiohttp import web

_ids = itertools.count(1)


def cloud(type_: str, data: dict, *, id: str | None = None, time: str = "2025-04-30T08:00:00Z") -> dict:
    return {"specversion": "1.0", "id": id or f"cs-{type_}-{next(_ids)}", "source": "/tests",
            "type": type_, "time": time, "subject": None, "datacontenttype": "application/json", "data": data}


def position(sku: str, available: int, backorder: int, **kw) -> dict:
    """A SkuPositionChanged as the recalculator publishes it (previous values are not read)."""
    return cloud("SkuPositionChanged", {"sku": sku, "available_qty": available, "backorder_qty": backorder,
                                        "previous_available_qty": 0, "previous_backorder_qty": 0}, **kw)


def purchase_order(po_id: str, *lines: tuple, **kw) -> dict:
    """lines: (sku, qty_ordered, qty_received, estimated_delivery_date)"""
    return cloud("PurchaseOrderUpdated", {"po_id": po_id, "lines": [
        {"sku": s, "qty_ordered": o, "qty_received": r, "estimated_delivery_date": eta} for s, o, r, eta in lines
    ]}, **kw)


def container(container_id: str, eta: str | None, lines: dict[str, int], **kw) -> dict:
    return cloud("ContainerUpdated", {"container_id": container_id, "estimated_arrival_date": eta,
                                      "lines": [{"sku": s, "qty": q} for s, q in lines.items()]}, **kw)


def product(sku: str, name: str, **kw) -> dict:
    return cloud("ProductUpserted", {"sku": sku, "name": name}, **kw)


def settings(**values) -> dict:
    return cloud("SettingsChanged", {"settings": values})


def records(events: list[dict], start: int = 1) -> list[tuple[int, bytes]]:
    return [(n, json.dumps(e).encode()) for n, e in enumerate(events, start)]


# -- the stand-in server ---------------------------------------------------------------------


@dataclass
class Seen:
    channel: str
    method: str
    path: str
    headers: dict
    body: str
    at: float

    def json(self):
        return json.loads(self.body)


@dataclass
class Answer:
    status: int
    body: str = ""
    headers: dict = field(default_factory=dict)


WAYFAIR_OK = json.dumps({"data": {"inventory": {"save": {"handle": "h-1", "submittedAt": "2025-04-30 08:00:00",
                                                          "errors": []}}}})


class StandIn:
    """One aiohttp application serving the three channels under /wayfair, /overstock and
    /magento. `script(channel, *answers)` queues answers returned before the normal one
    (channel "wayfair-token": the token endpoint's);
    `refuse_sku(sku, status, body)` makes Magento answer that SKU so every time."""

    CLIENT_ID, CLIENT_SECRET = "wf-client", "wf-secret"
    OVERSTOCK_KEY, MAGENTO_TOKEN = "os-key-123", "mg-token-456"

    def __init__(self, token_lifetime: float = 3600) -> None:
        self.token_lifetime = token_lifetime
        self.requests: list[Seen] = []
        self.scripts: dict[str, deque[Answer]] = defaultdict(deque)
        self.refused: dict[str, Answer] = {}
        self.tokens: dict[str, float] = {}  # token → expiry (monotonic)
        self.issued = 0
        self.runner: web.AppRunner | None = None
        self.base = ""

    async def start(self) -> StandIn:
        app = web.Application()
        app.router.add_post("/wayfair/token", self._token)
        app.router.add_post("/wayfair/graphql", self._graphql)
        app.router.add_post("/overstock/inventory", self._overstock)
        app.router.add_put("/magento/rest/V1/products/{sku}/stockItems/{item}", self._magento)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def script(self, channel: str, *answers: Answer) -> None:
        self.scripts[channel].extend(answers)

    def refuse_sku(self, sku: str, status: int, body: str) -> None:
        self.refused[sku] = Answer(status, body)

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    def seen(self, channel: str, path_part: str = "") -> list[Seen]:
        return [r for r in self.requests if r.channel == channel and path_part in r.path]

    async def _record(self, channel: str, request: web.Request) -> Seen:
        body = await request.text()
        seen = Seen(channel, request.method, request.path, dict(request.headers), body, time.monotonic())
        self.requests.append(seen)
        return seen

    def _scripted(self, channel: str) -> web.Response | None:
        if self.scripts[channel]:
            answer = self.scripts[channel].popleft()
            return web.Response(status=answer.status, text=answer.body, headers=answer.headers)
        return None

    @staticmethod
    def _bearer(request: web.Request) -> str | None:
        value = request.headers.get("Authorization", "")
        return value[len("Bearer "):] if value.startswith("Bearer ") else None

    async def _token(self, request: web.Request) -> web.Response:
        seen = await self._record("wayfair-token", request)
        scripted = self._scripted("wayfair-token")
        if scripted is not None:
            return scripted
        body = seen.json()
        if (body.get("client_id"), body.get("client_secret"), body.get("grant_type")) != (
            self.CLIENT_ID, self.CLIENT_SECRET, "client_credentials"
        ):
            return web.json_response({"error": "access_denied"}, status=401)
        self.issued += 1
        token = f"tok-{self.issued}"
        self.tokens[token] = time.monotonic() + self.token_lifetime
        return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime})

    async def _graphql(self, request: web.Request) -> web.Response:
        await self._record("wayfair", request)
        token = self._bearer(request)
        if token is None or self.tokens.get(token, 0) < time.monotonic():
            return web.json_response({"errors": [{"message": "Unauthorized"}]}, status=401)
        return self._scripted("wayfair") or web.Response(text=WAYFAIR_OK, content_type="application/json")

    async def _overstock(self, request: web.Request) -> web.Response:
        await self._record("overstock", request)
        if self._bearer(request) != self.OVERSTOCK_KEY:
            return web.json_response({"message": "bad api key"}, status=401)
        return self._scripted("overstock") or web.json_response({"accepted": True})

    async def _magento(self, request: web.Request) -> web.Response:
        await self._record("magento", request)
        if self._bearer(request) != self.MAGENTO_TOKEN:
            return web.json_response({"message": "The consumer isn't authorized"}, status=401)
        refused = self.refused.get(request.match_info["sku"])
        if refused is not None:
            return web.Response(status=refused.status, text=refused.body)
        return self._scripted("magento") or web.json_response(int(request.match_info["item"]))


def http_config(base: str, **overrides) -> dict:
    """A channel configuration (as parsed TOML) pointing every channel at the stand-in."""
    fast = {"max_attempts": 4, "backoff_seconds": 0.05, "max_backoff_seconds": 0.2}
    channels = {
        "wayfair": {"kind": "wayfair", "url": f"{base}/wayfair/graphql", "token_url": f"{base}/wayfair/token",
                    "supplier_id": 4242, "batch_size": 2, "retry": fast},
        "overstock": {"kind": "overstock", "url": f"{base}/overstock/inventory", "retry": fast},
        "magento": {"kind": "magento", "url": f"{base}/magento", "retry": fast},
    }
    for name, changes in overrides.items():
        if changes is None:
            channels.pop(name)
        else:
            channels[name] = {**channels[name], **changes}
    return {"channels": channels}


CREDENTIALS = {
    "WAYFAIR_CLIENT_ID": StandIn.CLIENT_ID, "WAYFAIR_CLIENT_SECRET": StandIn.CLIENT_SECRET,
    "OVERSTOCK_API_KEY": StandIn.OVERSTOCK_KEY, "MAGENTO_TOKEN": StandIn.MAGENTO_TOKEN,
}


async def wait_for(condition, timeout: float = 60.0, step: float = 0.2) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        await asyncio.sleep(step)


def kafka_worker(data_dir):
    """Channel-sync's faust worker built in the test (default settings, the built-in file
    sinks under `data_dir`), for its agent to be fed directly."""
    from backorder_events.topics import InputTopics, OutputTopics
    from backorders_platform.kafka_settings import KafkaSettings
    from backorders_platform.settings import StorageSettings
    from channel_sync.kafka_worker import ChannelSyncKafkaWorker, WorkerConfig

    return ChannelSyncKafkaWorker(WorkerConfig(), KafkaSettings(), InputTopics(), OutputTopics(),
                                  StorageSettings(data_dir=data_dir))
