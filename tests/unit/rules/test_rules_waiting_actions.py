"""Manual actions naming an order not known yet (docs/behaviour.md, "Manual actions waiting
for their orders"): held for at most `action_wait` of business time, applied when their
orders are created, dead-lettered when they waited their whole bound."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from recalculator.domain.engine import Engine
from recalculator.domain.results import LineChange
from recalculator.processing import Tally, process
from recalculator.publishing import to_json
from support import created, event, feed, order_lines

WAIT = timedelta(minutes=10)


def at(clock: str) -> str:
    return f"2025-04-30T{clock}Z"


def mark(*order_ids: str, time: str, id: str = "m1", type_: str = "MarkBackorder") -> dict:
    return event(type_, {"order_ids": list(order_ids)}, time=at(time), id=id)


def stock(sku: str, qty: int, *, time: str) -> dict:
    return event("InventoryAdjusted", {"sku": sku, "warehouse_id": "W1", "set_to": qty,
                                       "recalculate": True}, time=at(time))


def tick(time: str) -> dict:
    """An input event that moves the business clock and touches no order."""
    return event("WarehouseUpserted", {"warehouse_id": "W9", "type": "Sellable"}, time=at(time))


def waiting_engine() -> Engine:
    engine = Engine(action_wait=WAIT)
    feed(engine, stock("S", 10, time="09:00:00"))
    return engine


def test_an_action_dated_before_its_order_is_held_then_applied_when_the_order_is_created():
    engine = waiting_engine()
    [held] = feed(engine, mark("o1", time="10:00:00"))
    assert held.status == "held"
    assert held.reason == "unknown order 'o1': held until it is known, for at most PT10M"
    assert ("/tests", "m1") not in engine.processed and ("/tests", "m1") in engine.waiting

    [arrival] = feed(engine, created("o1", [("1", "S", 2)], time=at("10:00:03")))
    assert arrival.status == "applied"
    assert order_lines(engine, "o1") == {"1": 2}  # the mark was applied after the order
    [settled] = arrival.settled
    assert (settled.event_id, settled.event_type, settled.outcome.status) == ("m1", "MarkBackorder", "applied")
    [change] = settled.outcome.orders
    assert (change.order_id, change.status, change.reason, change.cause_id) == ("o1", "Full", "manual", "m1")
    assert change.lines == (LineChange("1", "S", 2, 2, 0),)
    assert settled.time.isoformat() == "2025-04-30T10:00:00+00:00"
    assert ("/tests", "m1") in engine.processed and not engine.waiting


def test_a_release_is_published_after_the_order_s_own_outputs_with_the_action_s_id_and_time():
    engine = waiting_engine()
    raw_mark = to_json(mark("o1", time="10:00:00"))
    assert process(engine, raw_mark, "log", 1).status == "held"
    result = process(engine, to_json(created("o1", [("1", "S", 2)], time=at("10:00:03"))), "log", 2)
    assert result.status == "applied" and result.released == 1 and not result.held_dead_letters
    summary = [(e["type"], e["time"], e["data"].get("reason"), e["data"].get("cause_id"),
                e["data"].get("backorder_qty")) for e in result.outputs]
    assert summary == [
        # the OrderCreated: o1 fully allocated (no BackorderChanged: nothing to publish),
        # its SKU's first position
        ("SkuPositionChanged", "2025-04-30T10:00:03Z", None, None, 0),
        # then the mark, as if applied at its own time
        ("BackorderChanged", "2025-04-30T10:00:00Z", "manual", "m1", None),
        ("ProductBackorderChanged", "2025-04-30T10:00:00Z", None, None, 2),
        ("SkuPositionChanged", "2025-04-30T10:00:00Z", None, None, 2),
    ]


def test_an_action_on_a_split_order_is_released_by_the_split_that_creates_it():
    engine = Engine(action_wait=WAIT)
    feed(engine, created("o1", [("1", "S", 3), ("2", "T", 1)], time=at("10:00:00")))  # no stock: Full
    [held] = feed(engine, mark("o1-S", time="10:00:01", type_="MarkNotBackorder"))
    assert held.status == "held"
    [split] = feed(engine, event("OrderSplit", {"order_id": "o1", "new_order_id": "o1-S",
                                                "lines": [{"line_id": "1", "qty": 2, "new_line_id": "1"}]},
                                 time=at("10:00:02")))
    assert split.status == "applied"
    [settled] = split.settled
    assert settled.outcome.status == "applied"
    assert [(c.order_id, c.status, c.reason) for c in settled.outcome.orders] == [("o1-S", "None", "manual")]
    assert order_lines(engine, "o1-S") == {"1": 0}
    assert order_lines(engine, "o1") == {"1": 1, "2": 1}


def test_an_action_on_several_orders_waits_until_every_one_is_known():
    engine = waiting_engine()
    feed(engine, created("known", [("1", "S", 1)], time=at("09:59:00")))
    [held] = feed(engine, mark("a", "known", "b", time="10:00:00"))
    assert held.status == "held" and "unknown orders 'a', 'b'" in held.reason

    [first] = feed(engine, created("a", [("1", "S", 1)], time=at("10:00:01")))
    assert first.settled == [] and ("/tests", "m1") in engine.waiting
    assert order_lines(engine, "a") == {"1": 0} and order_lines(engine, "known") == {"1": 0}

    [second] = feed(engine, created("b", [("1", "S", 1)], time=at("10:00:02")))
    [settled] = second.settled
    assert settled.outcome.status == "applied"
    assert [c.order_id for c in settled.outcome.orders] == ["a", "b", "known"]
    assert {o: order_lines(engine, o) for o in ("a", "b", "known")} == {
        "a": {"1": 1}, "b": {"1": 1}, "known": {"1": 1}}
    assert not engine.waiting and not engine._waiting_for


def test_waiting_actions_are_tried_in_the_order_they_were_held():
    engine = waiting_engine()
    feed(engine,
         mark("o1", time="10:00:00", id="first"),
         mark("o1", time="10:00:01", id="second", type_="MarkNotBackorder"))
    [arrival] = feed(engine, created("o1", [("1", "S", 2)], time=at("10:00:02")))
    assert [s.event_id for s in arrival.settled] == ["first", "second"]
    assert order_lines(engine, "o1") == {"1": 0}  # the later action has the last word


def test_an_action_that_fails_for_another_reason_once_its_order_is_known_is_dead_lettered():
    engine = waiting_engine()
    raw = to_json(event("ReallocateBackorder", {"order_id": "o1", "lines": [{"line_id": "1", "backorder_qty": 5}]},
                        time=at("10:00:00"), id="r1"))
    held = process(engine, raw, "commands", 7, partition=0)
    assert held.status == "held"
    result = process(engine, to_json(created("o1", [("1", "S", 2)], time=at("10:00:01"))), "orders", 3)
    assert result.status == "applied" and result.released == 0
    [letter] = result.held_dead_letters
    assert letter.reason == "backorder 5 for line '1' is above its qty 2"
    assert (letter.raw, letter.source, letter.position, letter.partition) == (raw, "commands", 7, 0)
    assert (letter.event_id, letter.event_type) == ("r1", "ReallocateBackorder")
    assert ("/tests", "r1") not in engine.processed and not engine.waiting
    assert order_lines(engine, "o1") == {"1": 0}


def test_an_action_still_waiting_after_its_bound_is_dead_lettered_with_its_raw_input():
    engine = waiting_engine()
    raw = to_json(mark("ghost", time="10:00:00"))
    tally = Tally()
    tally.add(process(engine, raw, "commands", 4, partition=0))
    # Commands do not move the business clock: a recalculation an hour later lets it wait on.
    recalculation = process(engine, to_json(event("RecalculateBackorders", {}, time=at("11:00:00"))), "commands", 5)
    assert recalculation.held_dead_letters == [] and engine.waiting
    exactly = process(engine, to_json(tick("10:10:00")), "reference", 1)  # waited exactly the bound
    assert exactly.held_dead_letters == [] and engine.waiting
    past = process(engine, to_json(tick("10:10:01")), "reference", 2)
    tally.add(past)
    assert past.status == "applied"
    [letter] = past.held_dead_letters
    assert letter.reason == "unknown order 'ghost' (waited PT10M for it)"
    assert (letter.raw, letter.source, letter.position, letter.partition) == (raw, "commands", 4, 0)
    assert (letter.event_id, letter.event_type) == ("m1", "MarkBackorder")
    assert not engine.waiting and not engine._waiting_for
    assert (tally.held, tally.applied, tally.held_dead_lettered, tally.total) == (1, 1, 1, 2)
    # The order arriving now creates it, and nothing waits for it any more.
    [late] = feed(engine, created("ghost", [("1", "S", 1)], time=at("10:10:02")))
    assert late.settled == [] and order_lines(engine, "ghost") == {"1": 0}


def test_an_action_already_older_than_its_bound_is_refused_at_once():
    engine = waiting_engine()
    feed(engine, tick("10:20:00"))
    [refused] = feed(engine, mark("ghost", time="10:00:00"))
    assert refused.status == "rejected" and refused.reason.startswith("unknown order 'ghost' (")
    assert "PT10M" in refused.reason and not engine.waiting


def test_an_event_with_the_identity_of_a_waiting_action_is_a_duplicate():
    engine = waiting_engine()
    feed(engine, mark("o1", time="10:00:00"))
    [again] = feed(engine, mark("o1", time="10:00:00"))
    assert again.status == "duplicate" and "already waiting" in again.reason
    [other_source] = feed(engine, {**mark("o1", time="10:00:00"), "source": "/elsewhere"})
    assert other_source.status == "held"  # the same id from another producer is another event
    [arrival] = feed(engine, created("o1", [("1", "S", 2)], time=at("10:00:01")))
    assert [s.outcome.status for s in arrival.settled] == ["applied", "applied"]
    [after] = feed(engine, mark("o1", time="10:00:00"))
    assert after.status == "duplicate" and "already processed" in after.reason


@pytest.mark.parametrize("wait", [None, timedelta(0)], ids=["none", "zero"])
def test_without_a_wait_an_action_naming_an_unknown_order_is_refused_at_once(wait):
    engine = Engine(action_wait=wait)
    feed(engine, created("o1", [("1", "S", 1)], time=at("09:00:00")))
    [refused] = feed(engine, mark("o1", "ghost", time="10:00:00"))
    assert (refused.status, refused.reason) == ("rejected", "unknown order 'ghost'")
    assert not engine.waiting
    [arrival] = feed(engine, created("ghost", [("1", "S", 1)], time=at("10:00:01")))
    assert arrival.settled == [] and order_lines(engine, "o1") == {"1": 1}


def test_other_events_naming_an_unknown_order_are_refused_at_once_as_before():
    engine = waiting_engine()
    for raw in (event("OrderStatusChanged", {"order_id": "ghost", "rush": True}, time=at("10:00:00")),
                event("RecalculateBackorders", {"order_ids": ["ghost"]}, time=at("10:00:00"))):
        [refused] = feed(engine, raw)
        assert (refused.status, refused.reason) == ("rejected", "unknown order 'ghost'")
    assert not engine.waiting


def test_the_same_log_holds_and_releases_the_same_way_from_a_reference_as_when_restored():
    """What a runtime stores (the references) brings back the same waiting actions."""
    from recalculator.processing import held_event

    engine = waiting_engine()
    refs = []
    for n, raw in enumerate([mark("a", "b", time="10:00:00", id="x"), mark("c", time="10:00:01", id="y")]):
        process(engine, to_json(raw), "log", n)
        refs.append(engine.waiting[("/tests", raw["id"])].ref)
    restored = waiting_engine()
    for ref in json.loads(json.dumps(refs)):
        restored.restore_waiting(held_event(ref), ref)
    assert list(restored.waiting) == list(engine.waiting)
    assert {k: set(v) for k, v in restored._waiting_for.items()} == {k: set(v) for k, v in engine._waiting_for.items()}
    for target in (engine, restored):
        [out] = feed(target, created("a", [("1", "S", 1)], time=at("10:00:02")))
        assert out.settled == []
        [out] = feed(target, created("b", [("1", "S", 1)], time=at("10:00:03")))
        assert [s.event_id for s in out.settled] == ["x"]


@pytest.mark.parametrize(("value", "expected"), [
    (None, timedelta(minutes=10)), ("PT10M", timedelta(minutes=10)), ("PT36H", timedelta(hours=36)),
    ("90", timedelta(seconds=90)), ("0", None), ("PT0S", None),
])
def test_the_wait_is_a_runtime_setting_handed_to_the_engine(monkeypatch, value, expected):
    from recalculator.config import RetentionSettings

    if value is None:
        monkeypatch.delenv("BACKORDERS_ACTION_WAIT", raising=False)
    else:
        monkeypatch.setenv("BACKORDERS_ACTION_WAIT", value)
    options = RetentionSettings().engine_options()
    assert options["action_wait"] == expected
    engine = Engine(**options)
    assert engine.action_wait == (None if expected is None else expected // timedelta(microseconds=1))


def test_a_negative_wait_is_refused():
    from pydantic import ValidationError
    from recalculator.config import RetentionSettings

    with pytest.raises(ValidationError):
        RetentionSettings(action_wait=timedelta(seconds=-1))
    with pytest.raises(ValueError, match="action_wait"):
        Engine(action_wait=timedelta(seconds=-1))


def test_an_order_created_after_the_bound_lets_the_action_go_before_it_could_release_it():
    engine = waiting_engine()
    feed(engine, mark("o1", time="10:00:00"))
    [late] = feed(engine, created("o1", [("1", "S", 2)], time=at("10:10:01")))
    [settled] = late.settled
    assert (settled.outcome.status, settled.outcome.reason) == (
        "rejected", "unknown order 'o1' (waited PT10M for it)")
    assert order_lines(engine, "o1") == {"1": 0} and not engine.waiting
    engine = waiting_engine()
    feed(engine, mark("o1", time="10:00:00"))
    [in_time] = feed(engine, created("o1", [("1", "S", 2)], time=at("10:10:00")))
    assert [s.outcome.status for s in in_time.settled] == ["applied"]


def test_actions_stored_waiting_are_let_go_once_the_clock_passes_them_when_holding_is_off():
    from recalculator.processing import held_event, held_reference

    raw = to_json(mark("ghost", time="10:00:00"))
    engine = Engine()  # holding turned off since the action was stored
    feed(engine, tick("09:00:00"))
    ref = held_reference(raw.encode(), "commands", 1, 0)
    engine.restore_waiting(held_event(ref), ref)
    [before] = feed(engine, tick("10:00:00"))
    assert before.settled == [] and engine.waiting
    [after] = feed(engine, tick("10:00:01"))
    [settled] = after.settled
    assert settled.outcome.reason == "unknown order 'ghost' (waited PT0S for it)"
    assert not engine.waiting
