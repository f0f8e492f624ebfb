"""Trying a unit of work again, telling an outage from a failure that counts (the notifier's
and channel-sync's intake; tenacity does the trying and the pauses).

The database or the network going away is an outage: the work is tried again for as long as
it takes, and it never counts against the work. Any other failure (a bug, an input nothing
foresaw, a value the database refuses) counts: after `attempts` of them the caller decides
(the intake then takes the batch's records one at a time and dead-letters the one that
keeps failing). What cannot be told from the error is told by asking the database whether
it answers.
"""

from __future__ import annotations

import asyncio
import sqlite3
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError
from tenacity import AsyncRetrying, RetryCallState, wait_exponential

T = TypeVar("T")

try:  # the PostgreSQL driver's errors for a server that is gone or not taking connections
    import asyncpg

    _CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
        asyncpg.exceptions.PostgresConnectionError,  # the connection failed or is gone
        asyncpg.exceptions.CannotConnectNowError,  # starting up or shutting down
        asyncpg.exceptions.AdminShutdownError,
        asyncpg.exceptions.CrashShutdownError,
        asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
    )
except ImportError:  # pragma: no cover - asyncpg is a dependency
    _CONNECTION_ERRORS = ()


def looks_like_outage(error: BaseException) -> bool:
    """True when the error (or what caused it) is a connection that failed, not the work."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (OSError, TimeoutError, asyncio.TimeoutError, *_CONNECTION_ERRORS)):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, sqlite3.OperationalError) and "locked" in str(current):
            return True
        # What it was raised from (SQLAlchemy wraps the driver's error): not what happened
        # to be handled when it was raised, which says nothing about this failure.
        current = getattr(current, "orig", None) or current.__cause__
    return False


@dataclass(frozen=True, slots=True)
class Failed:
    """Work that failed `attempts` times while the database answered."""

    error: BaseException
    attempts: int

    def reason(self) -> str:
        trace = "".join(traceback.format_exception(self.error)).rstrip()
        return f"failed {self.attempts} times: {type(self.error).__name__}: {self.error}\n{trace}"


async def attempt(
    work: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    reachable: Callable[[], Awaitable[bool]],
    on_error: Callable[[BaseException, bool, int, float], Any] | None = None,
    pause: float = 0.5,
    max_pause: float = 10.0,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    fatal: tuple[type[BaseException], ...] = (),
) -> T | Failed:
    """`work()`'s result, or Failed once it failed `attempts` times outside an outage.
    `on_error(error, outage, failures, retry_in)` is told of each failure (to log it);
    errors of the `fatal` types are raised at once."""
    counted = 0
    outage = False

    async def again(state: RetryCallState) -> bool:
        nonlocal counted, outage
        error = state.outcome.exception() if state.outcome is not None else None
        if error is None or isinstance(error, fatal) or not isinstance(error, Exception):
            return False  # a cancellation (or an exit) is not a failure to try again
        outage = looks_like_outage(error) or not await _answers(reachable)
        if not outage:
            counted += 1
        return True

    def told(state: RetryCallState) -> None:
        if on_error is not None:
            on_error(state.outcome.exception(), outage, counted, state.next_action.sleep)

    retrying = AsyncRetrying(
        retry=again, stop=lambda _state: not outage and counted >= attempts,
        wait=wait_exponential(multiplier=pause, max=max_pause), sleep=sleep, before_sleep=told,
        reraise=True,
    )
    try:
        return await retrying(_awaited, work)
    except fatal:
        raise
    except Exception as error:  # noqa: BLE001 - given up: the caller decides
        if on_error is not None:
            on_error(error, False, counted, 0.0)
        return Failed(error, counted)


async def until_done(work: Callable[[], Awaitable[T]], *, on_error=None, pause: float = 0.5,
                     max_pause: float = 10.0, fatal: tuple[type[BaseException], ...] = ()) -> T:
    """`work()` tried until it succeeds (for writes that must happen, e.g. a dead letter);
    errors of the `fatal` types are raised at once."""

    def told(state: RetryCallState) -> None:
        if on_error is not None:
            on_error(state.outcome.exception(), True, 0, state.next_action.sleep)

    retrying = AsyncRetrying(
        # tenacity catches BaseException: a cancellation (or an exit) ends the trying.
        retry=lambda state: state.outcome.failed and isinstance(state.outcome.exception(), Exception)
        and not isinstance(state.outcome.exception(), fatal),
        wait=wait_exponential(multiplier=pause, max=max_pause), before_sleep=told, reraise=True,
    )
    return await retrying(_awaited, work)


async def _awaited(work: Callable[[], Awaitable[T]]) -> T:
    # tenacity calls a plain function without awaiting what it returns: `work` may be a
    # lambda giving a coroutine.
    return await work()


async def _answers(reachable: Callable[[], Awaitable[bool]]) -> bool:
    try:
        return await asyncio.wait_for(reachable(), 10.0)
    except Exception:  # noqa: BLE001 - not answering is the answer
        return False
