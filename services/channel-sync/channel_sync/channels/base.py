"""What every sink takes and gives back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

ACCEPTED, REJECTED, GAVE_UP = "accepted", "rejected", "gave_up"


@dataclass(frozen=True, slots=True)
class Batch:
    channel: str
    number: int  # the channel's batch counter: names files, ties failures together
    rows: list[tuple[str, dict]]  # (our SKU, the channel's row), by SKU


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a channel answered one row.

    accepted: a 2xx answer; rejected: another 4xx (or a GraphQL error), recorded with the
    body and not sent again until the row changes (or a full push); gave_up: still 429/5xx
    or no answer after every retry, or our credentials refused (401/403, after Wayfair's one
    token refresh), recorded and left pending for the next push."""

    sku: str
    kind: str
    status: int | None = None
    body: str = ""
    attempts: int = 1


class Sink(Protocol):
    async def send(self, batch: Batch) -> list[Outcome]:
        """Deliver a batch. Rows with no outcome were not tried (they stay pending)."""

    async def close(self) -> None: ...


def for_all(batch: Batch, kind: str, status: int | None = None, body: str = "", attempts: int = 1) -> list[Outcome]:
    """The same answer for every row of a batch sent as one request."""
    return [Outcome(sku, kind, status, body, attempts) for sku, _ in batch.rows]
