"""What every channel promises: `send` returns once the message was accepted, or raises
DeliveryError saying whether trying again later may help."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..domain.message import Composed


class DeliveryError(Exception):
    """Not delivered. `transient`: a later attempt may succeed (4xx replies, connections
    refused or dropped, timeouts); otherwise retrying cannot help (5xx replies, certificate
    or configuration problems). `reason` is one line, without secrets."""


    def __init__(self, reason: str, *, transient: bool, unreachable: bool = False,
                 keep_connection: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        # The server (or the folder) cannot be reached at all: the other messages of the
        # round for this profile are not tried, so that no claim is held for long.
        self.unreachable = unreachable
        # The exchange ended cleanly (RSET): the connection can carry the next message.
        self.keep_connection = keep_connection


@dataclass(frozen=True, slots=True)
class Accepted:
    note: str | None = None  # e.g. copies refused for some Cc/Bcc recipients


class Channel(Protocol):
    async def send(self, message: Composed) -> Accepted: ...

    async def close(self) -> None: ...
