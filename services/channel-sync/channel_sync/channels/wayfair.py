"""Wayfair: the Supplier API's inventory mutation over GraphQL, with an OAuth 2.0
client-credentials token fetched from the configured token URL and fetched again when it
expires (or when the API answers 401, once per request).

A batch is one mutation carrying up to `batch_size` items, sent as a DIFFERENTIAL feed
(only the items that changed). A GraphQL answer with errors is a refusal of the batch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import aiohttp

from ..config import WayfairChannel
from .base import ACCEPTED, GAVE_UP, REJECTED, Batch, Outcome, for_all
from .http import Response, request, send_with_retries

MUTATION = """mutation inventory($inventory: [inventoryInput]!, $feedKind: inventoryFeedKind) {
  inventory {
    save(inventory: $inventory, feed_kind: $feedKind) {
      handle
      submittedAt
      errors { key message }
    }
  }
}"""


def request_body(rows: list[dict], feed_kind: str = "DIFFERENTIAL") -> dict:
    """The GraphQL request for one batch of rows (pure: the file sink writes the same)."""
    return {"query": MUTATION, "variables": {"inventory": rows, "feedKind": feed_kind}}


def graphql_errors(body: str) -> list:
    """Errors of a 200 answer: the request's own, or the inventory save's."""
    try:
        answer = json.loads(body)
    except ValueError:
        return [{"message": "the answer is not JSON"}]
    if not isinstance(answer, dict):
        return [{"message": "the answer is not a JSON object"}]
    errors = list(answer.get("errors") or [])
    save = ((answer.get("data") or {}).get("inventory") or {}).get("save") or {}
    errors.extend(save.get("errors") or [])
    return errors


class TokenError(Exception):
    def __init__(self, status: int | None, body: str) -> None:
        super().__init__(f"token endpoint: {status} {body[:200]}")
        self.status = status
        self.body = body


class TokenProvider:
    """An access token, fetched when there is none or it is about to expire."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        channel: WayfairChannel,
        client_id: str,
        client_secret: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_token: Callable[[str], object] | None = None,
    ) -> None:
        self.session = session
        self.channel = channel
        self.client_id = client_id
        self.client_secret = client_secret
        self.clock = clock
        self.on_token = on_token  # told of each token fetched (to keep it out of errors)
        self._token: str | None = None
        self._refresh_at = 0.0
        self.fetched = 0  # how many tokens were fetched (for operators and tests)

    def invalidate(self) -> None:
        self._token = None

    async def token(self) -> str:
        if self._token is None or self.clock() >= self._refresh_at:
            await self._fetch()
        return self._token

    async def _fetch(self) -> None:
        channel = self.channel
        payload = {
            "grant_type": "client_credentials", "client_id": self.client_id,
            "client_secret": self.client_secret, "audience": channel.audience,
        }
        attempted = await send_with_retries(
            lambda: request(self.session, "POST", channel.token_url, json=payload,
                            timeout=aiohttp.ClientTimeout(total=channel.timeout_seconds)),
            channel.retry,
        )
        if attempted.kind != ACCEPTED:
            raise TokenError(attempted.status, attempted.body)
        try:
            answer = json.loads(attempted.body)
            token = answer["access_token"]
            lifetime = float(answer.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError):
            raise TokenError(attempted.status, f"no access_token in the answer: {attempted.body[:200]}") from None
        # Refreshed a little before it expires, so a request never carries a stale token.
        if self.on_token is not None and isinstance(token, str):
            self.on_token(token)
        self._token = token
        self._refresh_at = self.clock() + lifetime - min(60.0, lifetime / 10)
        self.fetched += 1


class WayfairSink:
    def __init__(
        self, name: str, channel: WayfairChannel, session: aiohttp.ClientSession, tokens: TokenProvider
    ) -> None:
        self.name = name
        self.channel = channel
        self.session = session
        self.tokens = tokens

    async def send(self, batch: Batch) -> list[Outcome]:
        body = request_body([row for _, row in batch.rows], self.channel.feed_kind)
        refreshed = False

        async def call() -> Response:
            nonlocal refreshed
            token = await self.tokens.token()
            response = await self._post(body, token)
            if response.status == 401 and not refreshed:
                # Revoked or expired early: one more try with a fresh token.
                refreshed = True
                self.tokens.invalidate()
                response = await self._post(body, await self.tokens.token())
            return response

        try:
            attempted = await send_with_retries(call, self.channel.retry)
        except TokenError as error:
            return for_all(batch, GAVE_UP, error.status, f"token endpoint: {error.body}")
        if attempted.kind == ACCEPTED:
            errors = graphql_errors(attempted.body)
            if errors:
                return for_all(batch, REJECTED, attempted.status, attempted.body, attempted.attempts)
        return for_all(batch, attempted.kind, attempted.status, attempted.body, attempted.attempts)

    async def _post(self, body: dict, token: str) -> Response:
        return await request(
            self.session, "POST", self.channel.url, json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=self.channel.timeout_seconds),
        )

    async def close(self) -> None:
        pass
