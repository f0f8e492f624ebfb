"""The embedded runtime over SQLite: state survives a restart, and a restarted process
neither loses nor re-applies an event."""

from __future__ import annotations

import json

import pytest
from backorders_workload import WorkloadShape, generate_day, write_jsonl
from recalculator.adapters import tables as t
from recalculator.cli.replay import replay
from recalculator.domain.engine import Engine
from recalculator.publishing import to_json
from recalculator.runtime.embedded import EmbeddedRuntime
from support import expected_dates, published


def records_of(events):
    return [(n, e["__raw__"] if "__raw__" in e else to_json(e)) for n, e in enumerate(events, 1)]


def instant_boundary(records, near: int) -> int:
    """The first index from `near` where the log moves to a later time: a log cut there is a
    prefix of the order the whole log is applied in (ties at one instant go by topic and key,
    so a cut inside an instant would not be)."""
    def time_of(raw):
        try:
            return json.loads(raw)["time"]
        except (ValueError, KeyError, TypeError):
            return None

    for index in range(near, len(records)):
        before, after = time_of(records[index - 1][1]), time_of(records[index][1])
        if before is not None and after is not None and before < after:
            return index
    raise AssertionError("no later instant in the log")


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    folder = tmp_path_factory.mktemp("day")
    events = generate_day(11, WorkloadShape(orders=800, skus=60))
    # Exercise the stateful settings too: frozen lines and replacement SKUs.
    events.insert(0, {"specversion": "1.0", "id": "settings-1", "source": "/ops", "type": "SettingsChanged",
                      "time": "2025-04-30T07:00:00Z",
                      "data": {"settings": {"max_days_to_be_back": 10, "consider_replacement_sku_qty": True}}})
    log = folder / "day.jsonl"
    write_jsonl(events, log)
    out, dlq = folder / "out.jsonl", folder / "dlq.jsonl"
    tally = replay(str(log), str(out), str(dlq))
    return {
        "records": records_of(events),
        "outputs": out.read_text().splitlines(),
        "dead": [json.loads(line) for line in dlq.read_text().splitlines()],
        "tally": tally,
    }



async def outbox_payloads(runtime):
    async with runtime.db.connect() as conn:
        rows = await conn.execute(t.outbox.select().order_by(t.outbox.c.seq))
        return [row.payload for row in rows]


async def test_restart_midway_gives_the_same_outputs_as_replay(database, day):
    url, schema = database
    records = day["records"]
    half = instant_boundary(records, len(records) // 2)
    async with EmbeddedRuntime(url, batch_size=37, schema=schema) as runtime:
        first = await runtime.consume("day", records[:half])
    async with EmbeddedRuntime(url, batch_size=37, schema=schema) as runtime:
        assert len(runtime.engine.processed) == first.applied
        second = await runtime.consume("day", records)  # from the start: the position skips the first half
        assert second.total == len(records) - half
        assert first.applied + second.applied == day["tally"].applied
        assert await outbox_payloads(runtime) == day["outputs"]
        stored_dead = await runtime.repository.dead_letter_records()
        assert [(d.position, d.reason) for d in stored_dead] == [
            (d["position"], d["reason"]) for d in day["dead"]
        ]


async def test_loaded_state_equals_the_live_state(database, day):
    url, schema = database
    async with EmbeddedRuntime(url, batch_size=100, schema=schema) as runtime:
        await runtime.consume("day", day["records"])
        live = runtime.engine
    async with EmbeddedRuntime(url, schema=schema) as reloaded:
        assert published(reloaded.engine) == published(live)
        assert {k: v for k, v in reloaded.engine.totals.items() if v} == {
            k: v for k, v in live.totals.items() if v
        }
        assert reloaded.engine.settings == live.settings
        assert reloaded.engine.stock == live.stock
        assert reloaded.engine.incoming == live.incoming
        assert expected_dates(reloaded.engine) == expected_dates(live)
        assert any(date is not None for date, _ in expected_dates(live).values())
        assert reloaded.engine.processed == live.processed
        assert {o.order_id: o.published_status for o in reloaded.engine.orders.values()} == {
            o.order_id: o.published_status for o in live.orders.values()
        }


async def test_the_same_events_from_another_source_are_skipped_by_id(database, day):
    url, schema = database
    async with EmbeddedRuntime(url, schema=schema) as runtime:
        await runtime.consume("day", day["records"])
        before = await outbox_payloads(runtime)
        again = await runtime.consume("stdin", day["records"], track_position=False)
        assert again.applied == 0
        # Only the inputs that never applied come back: the dead-lettered ones.
        assert again.dead_lettered == day["tally"].dead_lettered
        assert await outbox_payloads(runtime) == before


async def test_a_failed_commit_leaves_nothing_behind(database, day, monkeypatch):
    url, schema = database
    records = day["records"]
    cut = instant_boundary(records, 100)
    async with EmbeddedRuntime(url, batch_size=50, schema=schema) as runtime:
        await runtime.consume("day", records[:cut])
        calls = {"n": 0}
        original = runtime.repository.write_rows

        async def failing(*args, **kwargs):
            await original(*args, **kwargs)
            calls["n"] += 1
            raise RuntimeError("disk full")

        monkeypatch.setattr(runtime.repository, "write_rows", failing)
        with pytest.raises(RuntimeError):
            await runtime.consume("day", records)
    async with EmbeddedRuntime(url, batch_size=50, schema=schema) as runtime:
        assert await runtime.repository.position("day") == cut
        assert len(runtime.engine.processed) == cut - _not_applied(day, cut)
        await runtime.consume("day", records)
        assert await outbox_payloads(runtime) == day["outputs"]


def _not_applied(day, upto: int) -> int:
    dead = sum(1 for d in day["dead"] if d["position"] <= upto)
    engine = Engine()
    from recalculator.processing import process

    duplicates = 0
    for position, raw in day["records"][:upto]:
        if process(engine, raw, "x", position).status == "duplicate":
            duplicates += 1
    return dead + duplicates


async def test_values_held_while_the_workflow_is_off_survive_a_restart(database):
    from support import created, event, in_sequence, stock

    url, schema = database
    first = in_sequence(
        created("o1", [("1", "X", 5)]),
        event("SettingsChanged", {"settings": {"enable_backorder_workflow": False}}),
        event("ItemReplaced", {"order_id": "o1", "line_id": "1", "new_sku": "X", "qty": 2}),
        event("SettingsChanged", {"settings": {"enable_backorder_workflow": True}}),
        start="2025-04-30T15:00:00Z",
    )
    async with EmbeddedRuntime(url, schema=schema) as runtime:
        await runtime.consume("a", [(n, json.dumps(e)) for n, e in enumerate(first, 1)])
    async with EmbeddedRuntime(url, schema=schema) as runtime:
        await runtime.consume("b", [(1, json.dumps(stock("X", 2, recalculate=True)))])
        [order, product, position] = [json.loads(p) for p in (await outbox_payloads(runtime))[-3:]]
    assert order["data"]["lines"] == [
        {"line_id": "1", "sku": "X", "qty": 2, "backorder_qty": 0, "previous_backorder_qty": 5}
    ]
    assert order["data"]["previous_status"] == "Full"
    assert (product["data"]["backorder_qty"], product["data"]["previous_backorder_qty"]) == (0, 5)
    # The position last published before the restart (0 available, 5 backordered) was kept.
    assert position["type"] == "SkuPositionChanged"
    assert position["data"] == {"sku": "X", "available_qty": 0, "backorder_qty": 0,
                                "previous_available_qty": 0, "previous_backorder_qty": 5}


def _waiting_log():
    """A MarkBackorder on a and b dated before both orders (a's a second later, b's two), and
    a MarkNotBackorder on a ghost order that never comes."""
    from support import created, event

    return [
        event("InventoryAdjusted", {"sku": "S", "warehouse_id": "W1", "set_to": 5, "recalculate": True},
              time="2025-04-30T09:00:00Z", id="stock"),
        event("MarkBackorder", {"order_ids": ["a", "b"]}, time="2025-04-30T10:00:00Z", id="mark"),
        event("MarkNotBackorder", {"order_ids": ["ghost"]}, time="2025-04-30T10:00:00Z", id="ghost-mark"),
        created("a", [("1", "S", 1)], time="2025-04-30T10:00:01Z"),
        # the restart comes here
        created("b", [("1", "S", 2)], time="2025-04-30T10:00:02Z"),
        event("WarehouseUpserted", {"warehouse_id": "W2", "type": "Sellable"}, time="2025-04-30T10:10:01Z"),
    ]


async def test_actions_waiting_for_their_orders_survive_a_restart(database, tmp_path):
    from recalculator.config import RetentionSettings

    url, schema = database
    records = [(n, json.dumps(e)) for n, e in enumerate(_waiting_log(), 1)]
    retention = RetentionSettings(action_wait="PT10M")
    async with EmbeddedRuntime(url, schema=schema, retention=retention) as runtime:
        first = await runtime.consume("log", records[:4])
        assert (first.applied, first.held, first.released) == (2, 2, 0)
        # Held in the order they were applied: at one instant the orders topic (an action on
        # one order goes there) before the commands topic.
        assert list(runtime.engine.waiting) == [("/tests", "ghost-mark"), ("/tests", "mark")]
    async with EmbeddedRuntime(url, schema=schema, retention=retention) as runtime:
        engine = runtime.engine
        assert list(engine.waiting) == [("/tests", "ghost-mark"), ("/tests", "mark")]
        assert ("/tests", "mark") not in engine.processed
        # Sent again (a producer's retry): still a duplicate of the waiting action.
        again = await runtime.consume("retry", [(1, records[1][1])])
        assert again.duplicates == 1
        second = await runtime.consume("log", records)  # the position skips the first four
        assert (second.applied, second.released, second.held_dead_lettered) == (2, 1, 1)
        assert not engine.waiting and ("/tests", "mark") in engine.processed
        assert {o: engine.orders[o].lines["1"].published for o in ("a", "b")} == {"a": 1, "b": 2}
        stored = await outbox_payloads(runtime)
        [letter] = await runtime.repository.dead_letter_records()
    async with EmbeddedRuntime(url, schema=schema, retention=retention) as runtime:
        assert not runtime.engine.waiting  # nothing left waiting once they were settled
    # The mark's outputs are its own (reason manual, its id and time), right after b's.
    marked = [json.loads(p) for p in stored if json.loads(p)["data"].get("cause_id") == "mark"]
    assert [(e["subject"], e["time"], e["data"]["reason"]) for e in marked] == [
        ("a", "2025-04-30T10:00:00Z", "manual"), ("b", "2025-04-30T10:00:00Z", "manual")]
    # The ghost's dead letter is the input as it was read before the restart.
    assert letter.reason == "unknown order 'ghost' (waited PT10M for it)"
    assert (letter.raw, letter.source, letter.position, letter.event_id) == (records[2][1], "log", 3, "ghost-mark")
    # The same as replay of the whole log in one go.
    events = tmp_path / "waiting.jsonl"
    events.write_text("".join(raw + "\n" for _, raw in records))
    out, dlq = tmp_path / "out.jsonl", tmp_path / "dlq.jsonl"
    replay(str(events), str(out), str(dlq), retention=retention)
    assert stored == out.read_text().splitlines()
    [replayed] = [json.loads(line) for line in dlq.read_text().splitlines()]
    assert (replayed["reason"], replayed["position"], replayed["raw"]) == (letter.reason, 3, letter.raw)
