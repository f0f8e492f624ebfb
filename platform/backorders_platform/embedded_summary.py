"""What a service reports after an embedded run (`backorders run` prints it)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class EmbeddedSummary:
    """What a downstream service did in an embedded run, as the rows `backorders run`
    prints under `title`."""

    title: str
    rows: list[tuple[str, str | int]] = field(default_factory=list)
