"""Operations over the input topics: replay them from the beginning into a fresh schema and
report every order whose state differs from the live one; rebuild the live state."""

from __future__ import annotations

from dataclasses import dataclass

from backorder_events.topics import InputTopics
from backorders_platform.kafka_settings import KafkaSettings

from ..domain.engine import Engine
from ..domain.model import NONE
from ..runtime.embedded import EmbeddedRuntime
from .worker import RecalculatorWorker


@dataclass
class OrderDifference:
    order_id: str
    live_status: str | None
    replayed_status: str | None
    live_lines: dict[str, int] | None
    replayed_lines: dict[str, int] | None


def _view(engine: Engine) -> dict[str, tuple[str, dict[str, int]]]:
    return {
        order.order_id: (order.published_status, {lid: l.published for lid, l in order.lines.items()})
        for order in engine.orders.values()
    }


def _published_only(view: dict[str, tuple[str, dict[str, int]]]) -> dict[str, tuple[str, dict[str, int]]]:
    """Lines with a backorder only, and orders with one: the sharded assembler keeps what it
    last published, so an order never published (status None, nothing backordered) and a
    line published at 0 look alike on both sides."""
    shown = {}
    for order_id, (status, lines) in view.items():
        lines = {line_id: value for line_id, value in lines.items() if value}
        if status != NONE or lines:
            shown[order_id] = (status, lines)
    return shown


def differences(live: Engine | dict, replayed: Engine) -> list[OrderDifference]:
    """Orders whose status or published line backorders differ; `live` is an engine, or the
    sharded recalculator's assembled state (`kafka.sharded.assembled_state`)."""
    if isinstance(live, dict):
        a, b = _published_only(live), _published_only(_view(replayed))
    else:
        a, b = _view(live), _view(replayed)
    found = []
    for order_id in sorted(a.keys() | b.keys()):
        if a.get(order_id) != b.get(order_id):
            la, lb = a.get(order_id), b.get(order_id)
            found.append(OrderDifference(
                order_id, la and la[0], lb and lb[0], la and la[1], lb and lb[1]
            ))
    return found


async def replay_topics(
    url: str,
    into_schema: str,
    live_schema: str | None = None,
    kafka: KafkaSettings | None = None,
    topics: InputTopics | None = None,
    *,
    live_shards: int = 0,
) -> list[OrderDifference]:
    """Consume the input topics from the beginning, up to their present end, into
    `into_schema` (which must hold no state yet), and compare with the live state: the
    single worker's in `live_schema`, or with `live_shards` the sharded recalculator's
    whose base schema is `live_schema`."""
    async with RecalculatorWorker(url, schema=into_schema, kafka=kafka, topics=topics) as worker:
        if worker.runtime.engine.processed:
            raise ValueError(f"schema {into_schema!r} already holds state: replay needs a fresh one")
        await worker.catch_up()
        replayed = worker.runtime.engine
    if live_shards:
        from .sharded import assembled_state

        return differences(await assembled_state(url, live_schema or "backorders"), replayed)
    async with EmbeddedRuntime(url, schema=live_schema) as live:
        return differences(live.engine, replayed)


async def rebuild(
    url: str,
    schema: str | None,
    kafka: KafkaSettings | None = None,
    topics: InputTopics | None = None,
) -> int:
    """Empty the live state and consume the topics again from the beginning, up to their
    present end. Under the state's worker lock: it waits for a running worker to stop."""
    worker = RecalculatorWorker(url, schema=schema, kafka=kafka, topics=topics)
    await worker.start(reset=True)
    try:
        await worker.catch_up()
        return len(worker.runtime.engine.processed)
    finally:
        await worker.stop()
