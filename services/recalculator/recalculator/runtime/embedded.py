"""The embedded runtime: the recalculator in one process, fed from an in-process log, with
its state in SQL (SQLite by default).

Inputs are handled in batches; everything a batch produced is committed in one transaction
together with the processed event ids and the source position. A process killed at any
point restarts from the last commit: the position skips what was committed, the processed
ids skip anything seen again, and nothing in the lost batch was visible anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from .. import logs
from ..adapters.repository import Repository, make_engine
from ..domain.engine import Engine
from ..processing import Processed, Tally, process
from .tuning import freeze_loaded_state

log = logs.get("recalculator.embedded")

DEFAULT_BATCH = 1000


def sqlite_url(path: str | Path) -> str:
    return f"sqlite+aiosqlite:///{Path(path)}"


class EmbeddedRuntime:
    def __init__(self, url: str, *, batch_size: int = DEFAULT_BATCH, schema: str | None = None) -> None:
        self.url = url
        self.batch_size = batch_size
        self.db = make_engine(url, schema)
        self.repository = Repository(self.db, schema)
        self.engine = Engine()

    async def start(self) -> EmbeddedRuntime:
        await self.repository.create_schema()
        await self.repository.load(self.engine)
        freeze_loaded_state()
        return self

    async def close(self) -> None:
        await self.db.dispose()

    async def __aenter__(self) -> EmbeddedRuntime:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def consume(
        self,
        source: str,
        records: Iterable[tuple[int, str | bytes]],
        *,
        track_position: bool = True,
        on_processed: Callable[[Processed], None] | None = None,
    ) -> Tally:
        """Handle `(position, raw)` records of one source in order. With `track_position`,
        records at or before the stored position of `source` are passed over."""
        tally = Tally()
        after = await self.repository.position(source) if track_position else None
        outputs: list[dict] = []
        dead = []
        pending = 0
        last_position = None
        for position, raw in records:
            if after is not None and position <= after:
                continue
            result = process(self.engine, raw, source, position)
            tally.add(result)
            outputs.extend(result.outputs)
            if result.dead_letter is not None:
                dead.append(result.dead_letter)
                log.warning(
                    "dead_lettered", source=source, position=position,
                    event_id=result.event_id, event_type=result.event_type, reason=result.reason,
                )
            if on_processed is not None:
                on_processed(result)
            pending += 1
            last_position = position
            if pending >= self.batch_size:
                await self._commit(outputs, dead, source if track_position else None, last_position)
                outputs, dead, pending = [], [], 0
        if pending:
            await self._commit(outputs, dead, source if track_position else None, last_position)
        return tally

    async def _commit(self, outputs, dead, source, position) -> None:
        rows = self.repository.batch_rows(
            self.engine, self.engine.take_changes(), outputs, dead, source, position
        )
        await self.repository.save_rows(rows)
        log.info(
            "batch_committed", source=source, position=position, applied=len(rows.processed),
            published=len(rows.outbox), dead_lettered=len(rows.dead_letters),
        )
