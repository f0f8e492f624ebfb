"""A CPU budget for a process, so a benchmark can hold each worker to a share of a core.

On a small machine the broker, PostgreSQL and the workers compete for the same cores, and
a second worker process finds little CPU left to use. Holding every worker to the same
budget (a Linux cgroup's CPU quota) measures what the design does when each worker has
cores of its own, as it would on a machine of its own. Needs a writable cgroup CPU
controller (root): version 2 (`cpu.max`) or version 1 (`cpu.cfs_quota_us`).
"""

from __future__ import annotations

import uuid
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000


def _v2_parent() -> Path | None:
    if not (ROOT / "cgroup.controllers").exists():
        return None
    if "cpu" not in (ROOT / "cgroup.controllers").read_text().split():
        return None
    return ROOT


def _v1_parent() -> Path | None:
    path = ROOT / "cpu"
    return path if (path / "cpu.cfs_quota_us").exists() else None


def unavailable() -> str | None:
    """Why no budget can be set here; None when it can."""
    parent = _v2_parent() or _v1_parent()
    if parent is None:
        return "no cgroup CPU controller is mounted"
    probe = parent / f"backorders-probe-{uuid.uuid4().hex[:8]}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError as error:
        return f"cannot create a cgroup under {parent}: {error.strerror}"
    return None


class CpuBudget:
    """A cgroup whose processes share `cores` of CPU time (0.3: 30 ms in every 100 ms)."""

    def __init__(self, cores: float) -> None:
        self.v2 = _v2_parent() is not None
        parent = _v2_parent() or _v1_parent()
        if parent is None:
            raise RuntimeError("no cgroup CPU controller is mounted")
        self.path = parent / f"backorders-bench-{uuid.uuid4().hex[:8]}"
        self.path.mkdir()
        quota = int(cores * PERIOD_US)
        if self.v2:
            (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        else:
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))

    def add(self, pid: int) -> None:
        """Move a process (all its threads, and the ones it starts later) into the budget."""
        (self.path / "cgroup.procs").write_text(str(pid))

    def remove(self) -> None:
        """Delete the cgroup once its processes have ended."""
        try:
            self.path.rmdir()
        except OSError:
            pass
