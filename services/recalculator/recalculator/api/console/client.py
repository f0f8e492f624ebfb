"""The console reads through the API itself, in process: one ASGI call per answer, no
socket, so every page shows exactly what the API answers (same validation, same errors)."""

from __future__ import annotations

import json
from urllib.parse import urlencode


class Answer:
    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers

    def json(self):
        return json.loads(self.body)

    @property
    def detail(self) -> str:
        try:
            return str(self.json().get("detail", ""))
        except (ValueError, AttributeError):
            return self.body[:300].decode("utf-8", "replace")


async def get(app, path: str, params: dict | None = None, headers: dict[str, str] | None = None) -> Answer:
    query = urlencode({k: v for k, v in (params or {}).items() if v not in (None, "")}, doseq=True)
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 0), "server": ("console", 80),
    }
    sent = False
    status, chunks, found = 500, [], {}

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            found.update({k.decode().lower(): v.decode("latin-1") for k, v in message.get("headers", [])})
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return Answer(status, b"".join(chunks), found)
