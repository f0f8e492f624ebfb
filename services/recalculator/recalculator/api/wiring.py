"""What the API is given beyond the state (the token, the input log, the readers of the
operations routes) and the routes it adds with them: the actions, the operations, the
console. `backorders serve` builds it from its options and the configuration."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from .actions import Publisher, actions_router
from .auth import Guard
from .input_log import Appended, InputLog
from .operations import DownstreamReaders, operations_router
from .supply import supply_router


@dataclass
class Services:
    guard: Guard = field(default_factory=lambda: Guard(None))
    input_log: InputLog | None = None
    # The embedded runtime applying the file log in this process (runtime/followed_log.py),
    # woken at every append; None: another process applies the log.
    follower: object | None = None
    # End offsets of the input topics from the broker, minus the stored positions; None
    # without a broker (the status then gives the positions only).
    lag: Callable[[dict[str, int]], Awaitable[dict[str, int]]] | None = None
    readers: DownstreamReaders = field(default_factory=DownstreamReaders)
    # Runs the replay audit over the state (the consistency page); None: not available.
    audit: Callable[[], Awaitable[list[dict]]] | None = None
    console: bool = True

    def appended(self, _where: Appended) -> None:
        if self.follower is not None:
            self.follower.wake()

    async def start(self) -> None:
        if self.follower is not None:
            await self.follower.start()

    async def close(self) -> None:
        if self.input_log is not None:
            await self.input_log.close()
        if self.follower is not None:
            await self.follower.close()


def register_extensions(app: FastAPI, db: AsyncEngine, services: Services) -> None:
    publisher = Publisher(services.input_log, services.appended)
    app.state.services = services
    app.include_router(actions_router(services.guard, publisher))
    app.include_router(supply_router(db))
    app.include_router(operations_router(db, services.guard, publisher, services.lag, services.readers))
    if services.console:
        from .console.pages import console_app

        app.mount("/console", console_app(app, services))
