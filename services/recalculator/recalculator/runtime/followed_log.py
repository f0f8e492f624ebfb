"""The embedded runtime following a log file: each time it is woken (an event was
appended, or its period passed) it applies the lines after the position it stored for the
file, exactly as `backorders run FILE` does (same source name, same positions), so either
may apply the log and neither applies a line twice.

It writes the state, so it is that state's writer: when another process wrote the state
since the follower's last batch (the state's version changed), the follower loads the
state again before applying, so it never writes over what it did not see."""

from __future__ import annotations

import asyncio
from pathlib import Path

from backorders_platform import logs

from .embedded import EmbeddedRuntime

log = logs.get("recalculator.followed_log")


def file_records(path: Path):
    """(line number, line) of every non-blank line: the positions `backorders run FILE` uses."""
    if not path.exists():
        return
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield number, line


class FollowedLog:
    def __init__(self, url: str, path: Path, schema: str | None = None, every_seconds: float = 5.0) -> None:
        self.path = Path(path)
        self.source = str(self.path.resolve())  # the source `backorders run FILE` names
        self.runtime = EmbeddedRuntime(url, schema=schema)
        self.every_seconds = every_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._version: str | None = None
        self.applied = 0  # records handled since the start (for the tests and the status page)

    async def start(self) -> None:
        await self.runtime.start()
        self._version = await self.runtime.repository.version()
        self._task = asyncio.create_task(self._follow())

    def wake(self) -> None:
        self._wake.set()

    async def apply_now(self) -> int:
        """Apply what the log holds beyond the stored position; how many records it handled."""
        version = await self.runtime.repository.version()
        if version != self._version:
            await self.runtime.reload()
        records = await asyncio.to_thread(lambda: list(file_records(self.path)))
        tally = await self.runtime.consume(self.source, records)
        handled = tally.applied + tally.duplicates + tally.dead_lettered + tally.held
        self._version = await self.runtime.repository.version()
        self.applied += handled
        return handled

    async def _follow(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.every_seconds)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.apply_now()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - the next wake tries again from the stored state
                log.error("log_not_applied", file=self.source, error=repr(error))
                try:
                    await self.runtime.reload()
                    self._version = await self.runtime.repository.version()
                except Exception:  # noqa: BLE001 - the database is away; the next wake tries again
                    self._version = None

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.runtime.close()
