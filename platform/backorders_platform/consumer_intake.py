"""Taking in consumed records so that no failure loses one: the intake of the notifier and
channel-sync (`retrying` does the trying).

A batch is taken in in one transaction, tried again while the database is away; when it
fails `attempts` times for any other reason (a bug, an input nothing foresaw), its records
are taken one at a time, and one that still fails that often is dead-lettered with the
traceback, its position passed, while the others go on. Errors of the `fatal` types (a
process that must stop writing) are raised at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from .redaction import first_line, redact
from .retrying import Failed, attempt, until_done
from .screening import Refused


class Record(Protocol):
    """A consumed record: where it was read (a source and a position in it) and its bytes."""

    source: str
    position: int
    raw: bytes | str | None


class Tally(Protocol):
    def add(self, other: Any) -> None: ...


class Store(Protocol):
    async def reachable(self) -> bool: ...

    async def dead_letter(self, source: str, position: int, raw: Any, refused: Refused, *, now: float) -> None: ...


R = TypeVar("R", bound=Record)
T = TypeVar("T", bound=Tally)


@dataclass(frozen=True, slots=True)
class Intake:
    """One service's intake: its store, clock, logger and attempts."""

    store: Store
    clock: Callable[[], float]  # the wall clock a dead letter is recorded at
    identity_of: Callable[[Any], tuple[str | None, str | None]]  # a raw record's event id and type
    log: Any
    attempts: int
    pause: float
    fatal: tuple[type[BaseException], ...] = ()

    async def records(
        self,
        records: Sequence[R],
        take_in: Callable[[Sequence[R]], Awaitable[T]],
        empty: Callable[[], T],
        dead_lettered: Callable[[], T],
    ) -> T:
        """`take_in(records)`'s tally, or when it keeps failing, the tallies of its records
        taken in one at a time, with `dead_lettered()` for each one that is dead-lettered."""
        outcome = await self.attempt(lambda: take_in(records), len(records))
        if not isinstance(outcome, Failed):
            return outcome
        self.log.error("intake_batch_failed", records=len(records), attempts=outcome.attempts,
                       error=first_line(outcome.error, 500), then="taking its records one at a time")
        tally = empty()
        for record in records:
            one = await self.attempt(lambda r=record: take_in([r]), 1)
            if isinstance(one, Failed):
                refused = Refused(redact(one.reason()), *self.identity_of(record.raw))
                await until_done(
                    lambda r=record, why=refused: self.store.dead_letter(
                        r.source, r.position, r.raw, why, now=self.clock()),
                    on_error=self._log_error(1), pause=self.pause, fatal=self.fatal)
                self.log.error("dead_letter", source=record.source, position=record.position,
                               reason=first_line(one.error, 500), attempts=one.attempts)
                tally.add(dead_lettered())
            else:
                tally.add(one)
        return tally

    async def attempt(self, work: Callable[[], Awaitable[T]], records: int) -> T | Failed:
        return await attempt(work, attempts=self.attempts, reachable=self.store.reachable,
                             on_error=self._log_error(records), pause=self.pause, fatal=self.fatal)

    def _log_error(self, records: int):
        def on_error(error: BaseException, outage: bool, failures: int, retry_in: float) -> None:
            self.log.error("intake_failed", records=records, outage=outage, failures=failures, retry_in=retry_in,
                           kind=type(error).__name__, error=first_line(error, 500))
        return on_error
