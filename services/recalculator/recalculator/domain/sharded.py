"""The SKU-sharded recalculator in one process: router → shards → assembler, applied one
input event at a time (docs/sharding.md). Pure. It is the reference the Kafka runtime's
stages follow, and the tests hold it equal, event by event, to the one-process `Engine`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from backorder_events import BackorderSettings

from .assembler import Assembler
from .engine import reason_of
from .model import to_us
from .results import APPLIED, Outcome
from .router import Router
from .shard_engine import ShardEngine
from .sharding import (
    OPERATIONS,
    AcquireSkus,
    ArriveLine,
    DepartLine,
    ReleaseSkus,
    Restricted,
)


class ShardDisagreement(AssertionError):
    """A shard refused what the router accepted: the shards and the router have diverged."""


def apply_record(engine: ShardEngine, item, cause_id: str, now: int) -> Outcome:
    if isinstance(item, OPERATIONS):
        outcome = engine.apply(item, cause_id, now)
    else:
        outcome = engine.handle(item.materialize() if isinstance(item, Restricted) else item)
    if outcome.status != APPLIED:
        raise ShardDisagreement(
            f"{type(item).__name__} of {cause_id!r}: {outcome.status}: {outcome.reason}"
        )
    return outcome


class ShardedEngine:
    def __init__(
        self,
        shards: int,
        settings: BackorderSettings | None = None,
        *,
        incremental: bool = True,
        dedupe_window: timedelta | None = None,
        closed_order_retention: timedelta | None = None,
        action_wait: timedelta | None = None,  # not used: see Router
    ) -> None:
        self.router = Router(
            shards, settings, dedupe_window=dedupe_window,
            closed_order_retention=closed_order_retention,
        )
        self.shards = [
            ShardEngine(settings, incremental=incremental) for _ in range(shards)
        ]
        self.assembler = Assembler()

    def handle(self, event) -> Outcome:
        routed = self.router.route(event)
        if routed.status != APPLIED:
            return Outcome(routed.status, routed.reason)
        now = to_us(event.time)
        handoffs: dict = {}
        partials, products, positions = [], [], []
        for shard, item in routed.records:
            if isinstance(item, ArriveLine):
                item = replace(item, handoff=handoffs.pop((item.order_id, item.line_id)))
            elif isinstance(item, AcquireSkus):
                item = replace(item, exports=handoffs.pop(item.skus))
            outcome = apply_record(self.shards[shard], item, event.id, now)
            if isinstance(item, DepartLine):
                handoffs[(item.order_id, item.line_id)] = outcome.handoff
            elif isinstance(item, ReleaseSkus):
                handoffs[item.skus] = outcome.handoff
            partials.extend((shard, partial) for partial in outcome.partials)
            products.extend(outcome.products)
            positions.extend(outcome.positions)
        orders = self.assembler.assemble(event.id, reason_of(event.type), partials, routed.publish)
        products.sort(key=lambda change: change.sku)
        positions.sort(key=lambda change: change.sku)
        return Outcome(APPLIED, None, orders, products, positions, evicted=routed.evicted)

    def published(self) -> dict[tuple[str, str], int]:
        """(order id, line id) → published backorder, over every shard."""
        return {
            (order_id, line_id): line.published
            for engine in self.shards
            for order_id, order in engine.orders.items()
            for line_id, line in order.lines.items()
        }
