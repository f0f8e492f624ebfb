"""Which topics a test session may delete when it ends, when sessions overlap.

Sessions against one broker register in a shared folder. The first to start while none
runs records the topics the broker had then (the baseline); a session that ends while
another still runs deletes nothing, and the last one to end deletes every topic not in the
baseline. Deleting "what appeared since my own start" instead would take the topics of a
session still running from under its tests.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SessionRegistry:
    def __init__(self, folder: Path, pid: int | None = None) -> None:
        self.folder = folder
        self.pid = pid if pid is not None else os.getpid()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _others(self) -> list[int]:
        pids = [int(path.stem) for path in self.folder.glob("*.session")]
        others = [pid for pid in pids if pid != self.pid and _alive(pid)]
        for pid in set(pids) - set(others) - {self.pid}:  # sessions that died without ending
            (self.folder / f"{pid}.session").unlink(missing_ok=True)
        return others

    def start(self, topics_now: Callable[[], set[str]]) -> None:
        with self._locked():
            baseline = self.folder / "baseline.json"
            if not self._others() or not baseline.exists():
                baseline.write_text(json.dumps(sorted(topics_now())))
            (self.folder / f"{self.pid}.session").touch()

    def end(self) -> set[str] | None:
        """The baseline when this is the last session running (the caller deletes every
        topic outside it), else None."""
        with self._locked():
            (self.folder / f"{self.pid}.session").unlink(missing_ok=True)
            if self._others():
                return None
            baseline = self.folder / "baseline.json"
            kept = set(json.loads(baseline.read_text())) if baseline.exists() else None
            baseline.unlink(missing_ok=True)
            return kept
