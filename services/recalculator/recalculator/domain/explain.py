"""Why a line has the backorder it has: its pool, the pool's supply, its place in the queue
and who is ahead of it, and whether it is calculated, frozen or manually set."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter

from . import policy
from .engine import Engine
from .model import Line, Order, from_us
from .pool import Pool


@dataclass
class Ahead:
    order_id: str
    line_id: str
    qty: int
    allocated: int


@dataclass
class LineExplanation:
    line_id: str
    sku: str
    qty: int
    published: int
    would_publish: int  # what a recalculation at the same time would publish
    state: str  # "calculated", "frozen" or "not calculated"
    manual: bool
    pool: str | None = None
    supply: int = 0
    held_by_frozen: int = 0
    available: int = 0
    position: int | None = None  # 1-based place in the pool's priority queue
    queue_length: int = 0
    ahead_count: int = 0
    ahead_qty: int = 0
    ahead: list[Ahead] = field(default_factory=list)
    allocated: int = 0
    from_replacement: int = 0
    # docs/behaviour.md, "Expected date per line": ISO date-times, None when none
    expected_date: str | None = None
    published_expected_date: str | None = None
    reasons: list[str] = field(default_factory=list)


def explain_order(engine: Engine, order_id: str, now: int | None = None, show_ahead: int = 5,
                  ahead_qty: Callable[[Pool, int], int] | None = None):
    """Explanations for every line of an order, at `now` (default: the last event's time).
    Settles the pools involved, which changes no published value. `ahead_qty(pool, index)`:
    the units of the first `index` lines of the pool's queue, if the caller keeps them
    (otherwise summed here, over every line ahead)."""
    order = engine.orders[order_id]
    now = engine.last_time if now is None else now
    explanations = []
    for line in order.lines.values():
        explained = _explain_line(engine, order, line, now, show_ahead, ahead_qty or _ahead_qty)
        explained.expected_date = _iso(engine.expected_date(line))
        explained.published_expected_date = _iso(line.published_date)
        explanations.append(explained)
    return explanations


def _iso(value: int | None) -> str | None:
    return None if value is None else from_us(value).isoformat().replace("+00:00", "Z")


def _ahead_qty(pool: Pool, index: int) -> int:
    by_key = pool.by_key.__getitem__  # summed without a list of the lines
    return sum(map(_qty, map(by_key, pool.queue.islice(0, index))))


def _explain_line(engine: Engine, order: Order, line: Line, now: int, show_ahead: int, ahead_qty):
    settings = engine.settings
    result = LineExplanation(
        line.line_id, line.sku, line.qty, line.published, line.published, "calculated", line.manual
    )
    pool = line.pool
    if pool is None:
        result.state = "not calculated"
        result.would_publish = 0
        result.reasons.extend(_not_calculated_reasons(engine, order))
        return _manual_note(result, line)
    if now is not None:
        engine.prepare(pool, now)
    result.pool = line.sku if pool.warehouse_id is None else f"{line.sku} @ {pool.warehouse_id}"
    result.supply = pool.supply
    result.held_by_frozen = pool.frozen_used
    result.available = pool.available
    result.queue_length = len(pool)
    if line.frozen:
        result.state = "frozen"
        result.reasons.append(
            f"order dated {_day(order.order_date)} is more than {settings.max_days_to_be_back} days "
            f"before {_day(now)}: it keeps its published backorder {line.published} and holds "
            f"{line.qty - line.published} of the pool's supply before anyone else"
        )
        return _manual_note(result, line)
    index = pool.queue.index(line.key)
    result.position = index + 1
    result.ahead_count = index
    result.ahead_qty = ahead_qty(pool, index)
    by_key = pool.by_key.__getitem__
    result.ahead = [
        Ahead(o.order.order_id, o.line_id, o.qty, o.alloc)
        for o in map(by_key, pool.queue.islice(0, min(index, show_ahead)))
    ]
    result.allocated = line.alloc
    if settings.consider_replacement_sku_qty and line.sku in engine.replacements and now is not None:
        result.from_replacement = engine.replacement_draws(line.sku, now).get(line, 0)
    result.would_publish = Engine.target(line, result.from_replacement)
    result.reasons.append(
        f"served after {result.ahead_count} line(s) needing {result.ahead_qty} unit(s) "
        f"({_priority_words(settings)}); {result.available} available → allocated {line.alloc}"
        + (f", {result.from_replacement} from replacement {engine.replacements[line.sku]}"
           if result.from_replacement else "")
    )
    if result.would_publish != line.published and not line.manual:
        result.reasons.append(
            f"published {line.published}, a recalculation now would publish "
            f"{result.would_publish}: {line.sku} has not been recalculated since its inputs changed"
        )
    return _manual_note(result, line)


_qty = attrgetter("qty")


def _manual_note(result: LineExplanation, line: Line) -> LineExplanation:
    if line.manual:
        result.reasons.append(
            f"backorder {line.published} was set by a manual action; the next recalculation "
            f"of {line.sku} replaces it"
        )
    return result


def _not_calculated_reasons(engine: Engine, order: Order) -> list[str]:
    settings = engine.settings
    reasons = []
    status = order.order_status
    if status == "OnHold" and not settings.include_on_hold:
        reasons.append("order is OnHold and include_on_hold is off")
    elif status not in ("InProcess", "OnHold"):
        reasons.append(f"order status {status} is never calculated")
    payment = order.payment_status
    if payment == "Authorized" and not settings.include_authorized:
        reasons.append("payment is Authorized and include_authorized is off")
    elif payment in ("Unpaid", "Uncleared", "PartiallyPaid") and not settings.include_unpaid_and_partially_paid:
        reasons.append(f"payment is {payment} and include_unpaid_and_partially_paid is off")
    elif payment in ("Refunded", "PartiallyRefunded", "PaymentError"):
        reasons.append(f"payment {payment} is never calculated")
    if settings.warehouse_based and policy.status_eligible(settings, order):
        warehouse = policy.order_warehouse(settings, order)
        if warehouse is None:
            reasons.append("warehouse-based mode and the order has no ship-from or default warehouse")
        else:
            kind = engine.warehouse_types.get(warehouse, policy.SELLABLE)
            reasons.append(f"warehouse-based mode and warehouse {warehouse} is {kind}")
    reasons.append("a line that is not calculated takes no supply; its backorder is 0 once recalculated")
    return reasons


def _priority_words(settings) -> str:
    parts = []
    if settings.prioritize_picked:
        parts.append("picked first")
    if settings.prioritize_rush:
        parts.append("rush first")
    parts.append("by payment date" if settings.use_payment_date else "by order date")
    if settings.prioritize_fully_shippable:
        parts.append("whole lines that fit first")
    return ", ".join(parts)


def _day(value: int | None) -> str:
    return "?" if value is None else from_us(value).strftime("%Y-%m-%d %H:%M")


__all__ = ["explain_order", "LineExplanation"]
