"""How a downstream service in the embedded runtime receives the recalculator's outputs: as
its published events (the contract's CloudEvents), in the order published, never by
reading the recalculator's tables. The composition root hands the recalculator's feed
(`recalculator.adapters.published.OutboxEvents`) to the notifier and channel-sync."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from typing import NamedTuple, Protocol


class PublishedEvent(NamedTuple):
    position: int  # increasing in the order published: what a consumer stores to resume
    type: str  # the CloudEvent type, e.g. "BackorderChanged"
    payload: str  # the CloudEvent as JSON


class PublishedEvents(Protocol):
    def after(
        self, position: int, *, types: Collection[str] | None = None, batch: int = 1000
    ) -> AsyncIterator[list[PublishedEvent]]:
        """The events published after `position` (only those of `types` when given), in
        chunks of at most `batch`; nothing when nothing was published yet."""
