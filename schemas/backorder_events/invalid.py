"""The error of an input message the contract refuses (apart, so that the output models
can name it without importing the parser)."""

from __future__ import annotations


class InvalidEvent(ValueError):
    """A message that is not a valid input event; `reason` is one readable line."""

    def __init__(self, reason: str, event_id: str | None = None, event_type: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id
        self.event_type = event_type
