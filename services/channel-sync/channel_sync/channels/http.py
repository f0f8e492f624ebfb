"""HTTP requests that hold under faults: 429, 5xx, timeouts and refused connections are
tried again with exponential backoff, waiting what `Retry-After` asks when the server says
(seconds or an HTTP date, capped); anything else is answered at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp
from multidict import CIMultiDict

from ..config import RetrySettings
from .base import ACCEPTED, GAVE_UP, REJECTED

RETRYABLE = frozenset({408, 429}) | frozenset(range(500, 600))
# Our credentials were refused: no row is at fault, so none is recorded as refused; the
# rows stay pending (given up on) until the credentials are fixed. Not retried at once.
UNAUTHORISED = frozenset({401, 403})


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: str
    headers: Mapping[str, str] = field(default_factory=dict)  # case-insensitive from `request`


@dataclass(frozen=True, slots=True)
class Attempted:
    """The last answer (None: no answer at all), how many tries it took, and the outcome."""

    response: Response | None
    attempts: int
    kind: str
    problem: str = ""

    @property
    def status(self) -> int | None:
        return None if self.response is None else self.response.status

    @property
    def body(self) -> str:
        return self.problem if self.response is None else self.response.body


def retry_delay(response: Response | None, attempt: int, policy: RetrySettings, now: datetime | None = None) -> float:
    """Seconds to wait before try `attempt + 1`."""
    asked = None if response is None else _header(response.headers, "Retry-After")
    if asked:
        try:
            seconds = float(asked)
        except ValueError:
            try:
                moment = parsedate_to_datetime(asked)
                seconds = (moment - (now or datetime.now(UTC))).total_seconds()
            except (TypeError, ValueError):
                seconds = None
        if seconds is not None:
            return min(max(0.0, seconds), policy.max_retry_after_seconds)
    return min(policy.backoff_seconds * 2 ** (attempt - 1), policy.max_backoff_seconds)


def _header(headers, name: str) -> str | None:
    """A header's value whatever the case the server wrote its name in."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


async def send_with_retries(
    call: Callable[[], Awaitable[Response]],
    policy: RetrySettings,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Attempted:
    attempt = 0
    while True:
        attempt += 1
        response, problem = None, ""
        try:
            response = await call()
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            problem = f"{type(error).__name__}: {error}".strip()
        if response is not None and response.status in UNAUTHORISED:
            return Attempted(response, attempt, GAVE_UP)
        if response is not None and response.status not in RETRYABLE:
            kind = ACCEPTED if 200 <= response.status < 300 else REJECTED
            return Attempted(response, attempt, kind)
        if attempt >= policy.max_attempts:
            return Attempted(response, attempt, GAVE_UP, problem)
        await sleep(retry_delay(response, attempt, policy))


async def request(session: aiohttp.ClientSession, method: str, url: str, **kwargs) -> Response:
    async with session.request(method, url, **kwargs) as answer:
        body = await answer.text(errors="replace")
        # A case-insensitive mapping (HTTP header names are): `Retry-After` is found
        # however the server spelled it.
        return Response(answer.status, body, CIMultiDict(answer.headers))
