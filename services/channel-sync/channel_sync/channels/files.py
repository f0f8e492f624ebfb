"""The file sink: each batch's payload, exactly as the channel's HTTP sink would send it,
written to `<feeds dir>/<channel>/<batch number>.<ext>` (the embedded default, and a dry
run). The write is atomic (a temporary file renamed), and a batch written again after a
crash keeps its number, so it replaces the file it wrote before."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..domain.feeds import MAGENTO, OVERSTOCK, WAYFAIR
from .base import ACCEPTED, Batch, Outcome, for_all
from .magento import stock_item_request
from .overstock import csv_body
from .wayfair import request_body


def render(kind: str, rows: list[dict], feed_kind: str = "DIFFERENTIAL") -> tuple[str, str]:
    """(file extension, content) of one batch for a channel kind."""
    if kind == WAYFAIR:
        return "json", json.dumps(request_body(rows, feed_kind), indent=2) + "\n"
    if kind == OVERSTOCK:
        return "csv", csv_body(rows)
    if kind == MAGENTO:
        lines = []
        for row in rows:
            path, body = stock_item_request(row)
            lines.append(json.dumps({"method": "PUT", "path": path, "body": body}, sort_keys=True))
        return "jsonl", "\n".join(lines) + "\n"
    raise ValueError(f"no file format for channel kind {kind!r}")


class FileSink:
    def __init__(self, name: str, kind: str, directory: Path, feed_kind: str = "DIFFERENTIAL") -> None:
        self.name = name
        self.kind = kind
        self.directory = Path(directory)
        self.feed_kind = feed_kind

    async def send(self, batch: Batch) -> list[Outcome]:
        extension, content = render(self.kind, [row for _, row in batch.rows], self.feed_kind)
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{batch.number:06d}.{extension}"
        temporary = target.with_suffix(target.suffix + ".tmp")
        temporary.write_text(content, encoding="utf-8")
        os.replace(temporary, target)
        return for_all(batch, ACCEPTED)

    async def close(self) -> None:
        pass
