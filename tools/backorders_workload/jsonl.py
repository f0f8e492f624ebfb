"""Events as JSON lines (a bad `not-json` input written verbatim)."""

from __future__ import annotations

import json
import os
from typing import IO, Iterable


def write_jsonl(events: Iterable[dict], path_or_file: str | os.PathLike | IO[str]) -> int:
    """One compact JSON object per line (``{"__raw__": text}`` written verbatim); returns the count."""
    if hasattr(path_or_file, "write"):
        return _write(events, path_or_file)  # type: ignore[arg-type]
    with open(path_or_file, "w", encoding="utf-8", newline="\n") as fh:
        return _write(events, fh)


def _write(events: Iterable[dict], fh: IO[str]) -> int:
    count = 0
    for ev in events:
        raw = ev.get("__raw__") if len(ev) == 1 else None
        fh.write((raw if isinstance(raw, str) else json.dumps(ev, separators=(",", ":"))) + "\n")
        count += 1
    return count
