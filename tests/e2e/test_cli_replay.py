"""`backorders replay`: the public calling shape, bad input, byte-identical output."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from backorder_events import BackorderChanged, DeadLetter, ProductBackorderChanged
from support import created, event, stock

BACKORDERS = [sys.executable, "-m", "backorders_app.main"]


def run_replay(tmp_path, lines, *extra):
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(line + b"\n" for line in lines))
    out, dlq = tmp_path / "out.jsonl", tmp_path / "dlq.jsonl"
    result = subprocess.run(
        [*BACKORDERS, "replay", str(events), "--out", str(out), "--dead-letter", str(dlq), *extra],
        capture_output=True,
        text=True,
    )
    return result, out, dlq


def encode(raw: dict) -> bytes:
    return json.dumps(raw).encode()


def test_seed_cat_hammock_order_is_published_as_full_backorder(tmp_path):
    lines = [
        encode({**stock("cat-hammock", 0), "id": "s1"}),
        encode({**created("5145827", [("1", "cat-hammock", 2)]), "id": "o1"}),
    ]
    result, out, dlq = run_replay(tmp_path, lines)
    assert result.returncode == 0, result.stderr
    published = [json.loads(line) for line in out.read_text().splitlines()]
    order = BackorderChanged.model_validate(published[0])
    assert order.data.order_id == "5145827"
    assert order.data.status.value == "Full"
    assert [(l.sku, l.qty, l.backorder_qty) for l in order.data.lines] == [("cat-hammock", 2, 2)]
    product = ProductBackorderChanged.model_validate(published[1])
    assert (product.data.sku, product.data.backorder_qty) == ("cat-hammock", 2)
    assert dlq.read_text() == ""


def test_bad_inputs_are_dead_lettered_with_reasons_and_processing_goes_on(tmp_path):
    good = {**created("A", [("1", "sku", 3)]), "id": "good-1"}
    lines = [
        b"{not json",
        encode({**good, "type": "NoSuchEvent", "id": "x1"}),
        encode({**created("B", [("1", "sku", 0)]), "id": "x2"}),
        encode(event("OrderStatusChanged", {"order_id": "ghost", "order_status": "Completed"}, id="x3")),
        encode(good),
        encode(good),  # same id again: skipped as a duplicate
        encode({**created("A", [("1", "sku", 1)]), "id": "x4"}),  # order exists
        b"\xff\xfe binary",
        encode(event("ReallocateBackorder", {"order_id": "A", "lines": [{"line_id": "1", "backorder_qty": 9}]}, id="x5")),
        encode(event("ReallocateBackorder", {"order_id": "A", "lines": [{"line_id": "7", "backorder_qty": 1}]}, id="x6")),
    ]
    result, out, dlq = run_replay(tmp_path, lines)
    assert result.returncode == 0, result.stderr
    records = [DeadLetter.model_validate_json(line) for line in dlq.read_text().splitlines()]
    reasons = {record.position: record.reason for record in records}
    assert sorted(reasons) == [1, 2, 3, 4, 7, 8, 9, 10]
    assert reasons[1].startswith("not valid JSON")
    assert "unknown event type 'NoSuchEvent'" in reasons[2]
    assert "data.lines[0].qty" in reasons[3] and "greater than 0" in reasons[3]
    assert reasons[4] == "unknown order 'ghost'"
    assert reasons[7] == "order 'A' already exists"
    assert reasons[8].startswith("not valid JSON")
    assert "above its qty 3" in reasons[9]
    assert reasons[10] == "order 'A' has no line '7'"
    assert all(record.source.endswith("events.jsonl") for record in records)
    by_position = {record.position: record for record in records}
    assert by_position[2].event_id == "x1" and by_position[2].event_type == "NoSuchEvent"
    assert by_position[1].raw == "{not json"
    # The good order went through: no stock, so it is fully backordered.
    published = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(e["type"], e["subject"]) for e in published] == [
        ("BackorderChanged", "A"), ("ProductBackorderChanged", "sku"), ("SkuPositionChanged", "sku")]
    assert "10 inputs: 1 applied, 1 duplicates skipped, 8 dead-lettered" in result.stderr


def test_same_input_gives_byte_identical_output(tmp_path):
    from backorders_workload import WorkloadShape, generate_day, write_jsonl

    log = tmp_path / "day.jsonl"
    write_jsonl(generate_day(7, WorkloadShape(orders=600, skus=40)), log)
    first = tmp_path / "a"
    second = tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        result = subprocess.run(
            [*BACKORDERS, "replay", str(log), "--out", str(folder / "out.jsonl"),
             "--dead-letter", str(folder / "dlq.jsonl")],
            capture_output=True, text=True,
        )
        assert result.returncode == 0, result.stderr
    assert (first / "out.jsonl").read_bytes() == (second / "out.jsonl").read_bytes()
    assert (first / "dlq.jsonl").read_bytes() == (second / "dlq.jsonl").read_bytes()
    assert len((first / "out.jsonl").read_bytes().splitlines()) > 100


def test_settings_file_changes_the_allocation(tmp_path):
    lines = [
        encode({**stock("w", 10), "id": "s"}),
        encode({**created("old", [("1", "w", 40)], date="2025-04-01T00:00:00Z"), "id": "a"}),
        encode({**created("new", [("1", "w", 10)], date="2025-04-02T00:00:00Z"), "id": "b"}),
    ]
    settings = tmp_path / "settings.toml"
    settings.write_text("prioritize_fully_shippable = true\n")

    def backorders(*extra):
        result, out, _ = run_replay(tmp_path, lines, *extra)
        assert result.returncode == 0, result.stderr
        last = {}
        for line in out.read_text().splitlines():
            e = json.loads(line)
            if e["type"] == "BackorderChanged":
                last[e["subject"]] = e["data"]["lines"][0]["backorder_qty"]
        return last

    # The seed's 40/10 example: the newer order is served whole and never backordered.
    assert backorders("--settings", str(settings)) == {"old": 40}
    assert backorders() == {"old": 30, "new": 10}


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"prioritize_rush": "maybe"}', "prioritize_rush"),
        ('{"no_such_setting": true}', "no_such_setting"),
        ("{broken", "is not valid"),
    ],
)
def test_bad_settings_file_is_refused_with_a_clear_error(tmp_path, content, message):
    settings = tmp_path / "settings.json"
    settings.write_text(content)
    result, _, _ = run_replay(tmp_path, [encode(stock("w", 1))], "--settings", str(settings))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_events_file_is_a_clear_error(tmp_path):
    result = subprocess.run(
        [*BACKORDERS, "replay", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o"),
         "--dead-letter", str(tmp_path / "d")],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert "cannot read" in result.stderr


def test_a_manual_action_dated_before_its_orders_waits_for_them(tmp_path):
    """The operator's MarkBackorder is stamped two seconds before the order system's
    OrderCreated of the orders it names: held, then applied once both exist."""
    lines = [
        encode({**stock("S", 5), "id": "s1", "time": "2025-04-30T10:00:00Z"}),
        encode(event("MarkBackorder", {"order_ids": ["a", "b"]}, time="2025-04-30T10:00:01Z", id="mark")),
        encode({**created("a", [("1", "S", 1)]), "id": "oa", "time": "2025-04-30T10:00:03Z"}),
        encode({**created("b", [("1", "S", 2)]), "id": "ob", "time": "2025-04-30T10:00:03Z"}),
    ]
    result, out, dlq = run_replay(tmp_path, lines)
    assert result.returncode == 0, result.stderr
    assert dlq.read_text() == ""
    published = [json.loads(line) for line in out.read_text().splitlines()]
    manual = [(e["type"], e["subject"], e["time"]) for e in published
              if e["type"] == "BackorderChanged" and e["data"]["cause_id"] == "mark"]
    assert manual == [("BackorderChanged", "a", "2025-04-30T10:00:01Z"),
                      ("BackorderChanged", "b", "2025-04-30T10:00:01Z")]
    last = {e["subject"]: e["data"] for e in published if e["type"] == "BackorderChanged"}
    assert (last["a"]["status"], last["a"]["reason"]) == ("Full", "manual")
    assert [line["backorder_qty"] for line in last["b"]["lines"]] == [2]
    # The outputs follow b's own (the OrderCreated that released the mark).
    assert [e["data"]["cause_id"] for e in published if e["type"] == "BackorderChanged"][-2:] == ["mark", "mark"]
    assert "4 inputs: 3 applied, 0 duplicates skipped, 0 dead-lettered, 1 held for their orders " \
           "(1 applied and 0 dead-lettered after waiting)" in result.stderr
