"""`backorders run`, `search` and `explain` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from support import created, event, in_sequence, stock

BACKORDERS = [sys.executable, "-m", "backorders_app.main"]


def backorders(*args, env_dir=None, stdin=None):
    env = dict(os.environ)
    if env_dir is not None:
        env["BACKORDERS_DATA_DIR"] = str(env_dir)
    return subprocess.run([*BACKORDERS, *args], capture_output=True, text=True, env=env, input=stdin)


def write_log(path, events):
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


@pytest.fixture
def small_log(tmp_path):
    return write_log(tmp_path / "log.jsonl", in_sequence(
        {**stock("cat-hammock", 1), "id": "s1"},
        {**created("5145827", [("1", "cat-hammock", 2)], date="2025-04-30T10:00:00Z"), "id": "o1"},
        {**created("5145828", [("1", "cat-hammock", 1)], date="2025-04-30T11:00:00Z"), "id": "o2"},
        {**created("5145829", [("1", "mug", 1)], date="2025-04-30T12:00:00Z"), "id": "o3"},
        {**stock("mug", 5, recalculate=True), "id": "s2"},
    ))


def test_run_generates_a_day_and_prints_the_summary(tmp_path):
    result = backorders("run", "--orders", "400", "--skus", "40", "--no-progress", env_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for heading in ("Orders by backorder status", "Most backordered SKUs", "events/s"):
        assert heading in out
    assert (tmp_path / "demo.sqlite").exists()
    assert f"serve --db {tmp_path / 'demo.sqlite'}" in out and "http://127.0.0.1:8000/console" in out  # how to open the console
    # The demo database is searchable afterwards, and a second run starts afresh.
    full = backorders("search", "orders", "--backorder", "full-or-partial", "--jsonl",
                      "--db", str(tmp_path / "demo.sqlite"))
    assert full.returncode == 0, full.stderr
    rows = [json.loads(line) for line in full.stdout.splitlines()]
    assert rows and all(row["backorder_status"] in ("Full", "Partial") for row in rows)
    summary = next(l for l in out.splitlines() if " inputs: " in l)
    again = backorders("run", "--orders", "400", "--skus", "40", "--no-progress", env_dir=tmp_path)
    assert again.returncode == 0
    assert summary in again.stdout  # a fresh demo database: the same day, the same result
    applied = int(summary.split(" inputs: ")[1].split(" applied")[0])
    assert applied > 500


def test_run_without_a_log_never_deletes_the_database_named_by_db(tmp_path, small_log):
    db = tmp_path / "mine.sqlite"
    assert backorders("run", str(small_log), "--db", str(db), "--no-progress", env_dir=tmp_path).returncode == 0
    before = db.read_bytes()

    refused = backorders("run", "--db", str(db), "--orders", "50", "--skus", "10", "--no-progress",
                         env_dir=tmp_path)
    assert refused.returncode == 2
    [message] = refused.stderr.splitlines()
    assert message.startswith(f"backorders run: {db} already exists") and "never deletes" in message
    assert db.read_bytes() == before  # untouched: the user's three orders are still there
    rows = backorders("search", "orders", "--backorder", "full-or-partial", "--jsonl", "--db", str(db))
    assert sorted(json.loads(l)["order_id"] for l in rows.stdout.splitlines()) == ["5145827", "5145828"]

    url = backorders("run", "--db", f"sqlite+aiosqlite:///{db}", "--no-progress", env_dir=tmp_path)
    assert url.returncode == 2 and "is a URL" in url.stderr and db.read_bytes() == before

    # A new file named by --db takes the generated day, and is kept, not reset, afterwards.
    fresh = tmp_path / "sub" / "day.sqlite"
    made = backorders("run", "--db", str(fresh), "--orders", "50", "--skus", "10", "--no-progress",
                      "--no-downstream", env_dir=tmp_path)
    assert made.returncode == 0, made.stderr
    assert backorders("search", "orders", "--backorder", "none", "--jsonl", "--db", str(fresh)).stdout
    again = backorders("run", "--db", str(fresh), "--no-progress", env_dir=tmp_path)
    assert again.returncode == 2 and fresh.stat().st_size > 0


def test_a_bad_number_in_the_environment_stops_only_the_commands_that_use_it(tmp_path, small_log):
    db = tmp_path / "state.sqlite"
    bad = {"BACKORDERS_SHARDS": "two", "BACKORDERS_METRICS_PORT": "nine", "BACKORDERS_RECALC_EVERY_MINUTES": "soon"}
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}

    def run(*args, **extra):
        return subprocess.run([*BACKORDERS, *args], capture_output=True, text=True,
                              env={**env, "BACKORDERS_DATA_DIR": str(tmp_path), **extra})

    # Every other command works.
    assert run("--help", **bad).returncode == 0
    assert run("run", str(small_log), "--db", str(db), "--no-progress", "--no-downstream", **bad).returncode == 0
    found = run("search", "orders", "--backorder", "full", "--jsonl", "--db", str(db), **bad)
    assert found.returncode == 0, found.stderr
    assert [json.loads(l)["order_id"] for l in found.stdout.splitlines()] == ["5145828"]
    assert run("explain", "5145828", "--db", str(db), **bad).returncode == 0
    assert run("dead-letters", "--db", str(db), **bad).returncode == 0
    assert run("status", "--db", str(db), "--shards", "0", **bad).returncode == 0  # the option wins

    # The commands that read a bad value say so in one line.
    cases = [
        (("status", "--db", str(db)), {"BACKORDERS_SHARDS": "two"}, "BACKORDERS_SHARDS='two' is not a whole number"),
        (("rebuild", "--yes", "--db", str(db)), {"BACKORDERS_SHARDS": "two"},
         "BACKORDERS_SHARDS='two' is not a whole number"),
        (("worker", "recalculator", "--db", str(db)), {"BACKORDERS_SHARDS": "two"},
         "BACKORDERS_SHARDS='two' is not a whole number"),
        (("worker", "recalculator", "--db", str(db)), {"BACKORDERS_METRICS_PORT": "nine"},
         "BACKORDERS_METRICS_PORT='nine' is not a whole number"),
        (("worker", "recalculator", "--db", str(db)), {"BACKORDERS_RECALC_EVERY_MINUTES": "soon"},
         "BACKORDERS_RECALC_EVERY_MINUTES='soon' is not a number"),
    ]
    for args, variables, message in cases:
        result = run(*args, **variables)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.splitlines() == [f"backorders {args[0]}: {message}"], args


def test_run_a_log_continues_from_the_state_it_holds(tmp_path, small_log):
    db = tmp_path / "state.sqlite"
    first = backorders("run", str(small_log), "--db", str(db), "--no-progress")
    assert first.returncode == 0, first.stderr
    more = write_log(tmp_path / "more.jsonl", [
        {**event("POReceived", {"po_id": "P1", "warehouse_id": "W1",
                                "lines": [{"sku": "cat-hammock", "qty": 2}]}), "id": "r1"},
    ])
    second = backorders("run", str(more), "--db", str(db), "--no-progress")
    assert second.returncode == 0, second.stderr
    rows = backorders("search", "orders", "--backorder", "none", "--jsonl", "--db", str(db))
    assert {json.loads(l)["order_id"] for l in rows.stdout.splitlines()} == {"5145827", "5145828", "5145829"}
    # The same file again: already consumed, nothing re-applied.
    third = backorders("run", str(more), "--db", str(db), "--no-progress")
    assert "0 inputs: 0 applied" in third.stdout


def test_run_reads_standard_input(tmp_path, small_log):
    db = tmp_path / "state.sqlite"
    result = backorders("run", "-", "--db", str(db), "--no-progress", stdin=small_log.read_text())
    assert result.returncode == 0, result.stderr
    rows = backorders("search", "orders", "--backorder", "full", "--jsonl", "--db", str(db))
    assert [json.loads(l)["order_id"] for l in rows.stdout.splitlines()] == ["5145828"]


def test_search_filters_follow_the_seed(tmp_path, small_log):
    db = tmp_path / "state.sqlite"
    assert backorders("run", str(small_log), "--db", str(db), "--no-progress").returncode == 0

    def ids(kind):
        result = backorders("search", "orders", "--backorder", kind, "--jsonl", "--db", str(db))
        assert result.returncode == 0, result.stderr
        return sorted(json.loads(l)["order_id"] for l in result.stdout.splitlines())

    # cat-hammock: 1 in stock; the older order (2) gets it → Partial 1; the newer (1) → Full.
    assert ids("partial") == ["5145827"]
    assert ids("full") == ["5145828"]
    assert ids("full-or-partial") == ["5145827", "5145828"]
    assert ids("none") == ["5145829"]
    assert ids("not-full") == ["5145827", "5145829"]

    def skus(*bounds):
        result = backorders("search", "products", *bounds, "--jsonl", "--db", str(db))
        return [(r["sku"], r["backorder_qty"]) for r in map(json.loads, result.stdout.splitlines())]

    assert skus("--backorder-from", "1", "--backorder-to", "20") == [("cat-hammock", 2)]
    assert skus("--backorder-from", "3") == []


def test_explain_shows_pool_queue_and_reasons(tmp_path, small_log):
    db = tmp_path / "state.sqlite"
    assert backorders("run", str(small_log), "--db", str(db), "--no-progress").returncode == 0
    result = backorders("explain", "5145828", "--json", "--db", str(db))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    (line,) = report["lines"]
    assert report["status"] == "Full"
    assert line["pool"] == "cat-hammock"
    assert (line["supply"], line["available"], line["position"], line["queue_length"]) == (1, 1, 2, 2)
    assert line["ahead_count"] == 1 and line["ahead_qty"] == 2
    assert line["ahead"] == [{"order_id": "5145827", "line_id": "1", "qty": 2, "allocated": 1}]
    assert line["state"] == "calculated" and line["published"] == 1
    text = backorders("explain", "5145828", "--db", str(db))
    assert "served after 1 line(s) needing 2 unit(s)" in text.stdout


def test_explain_says_why_a_line_is_not_calculated_or_manual(tmp_path, small_log):
    db = tmp_path / "state.sqlite"
    more = write_log(tmp_path / "more.jsonl", [
        {**event("OrderStatusChanged", {"order_id": "5145827", "order_status": "OnHold"}), "id": "h1"},
        {**event("MarkBackorder", {"order_ids": ["5145829"]}), "id": "m1"},
    ])
    assert backorders("run", str(small_log), "--db", str(db), "--no-progress").returncode == 0
    assert backorders("run", str(more), "--db", str(db), "--no-progress").returncode == 0
    held = json.loads(backorders("explain", "5145827", "--json", "--db", str(db)).stdout)
    assert held["lines"][0]["state"] == "not calculated"
    assert any("OnHold" in reason for reason in held["lines"][0]["reasons"])
    manual = json.loads(backorders("explain", "5145829", "--json", "--db", str(db)).stdout)
    assert manual["lines"][0]["manual"] is True and manual["lines"][0]["published"] == 1
    assert any("manual action" in reason for reason in manual["lines"][0]["reasons"])
    missing = backorders("explain", "nope", "--db", str(db))
    assert missing.returncode == 2 and "unknown order 'nope'" in missing.stderr


def test_dead_letters_lists_refused_inputs_with_reasons(tmp_path, small_log):
    db = tmp_path / "state.sqlite"
    bad = tmp_path / "bad.jsonl"
    # (A manual action naming an unknown order would wait for it: a status change does not.)
    bad.write_text('{"oops"\n' + json.dumps(event("OrderStatusChanged", {"order_id": "ghost", "rush": True},
                                                   id="m9")) + "\n")
    assert backorders("run", str(small_log), "--db", str(db), "--no-progress").returncode == 0
    refused = backorders("run", str(bad), "--db", str(db), "--no-progress")
    assert refused.returncode == 0
    # Each refusal is also logged, as JSON on standard error, with where it came from.
    # (The embedded notifier and channel-sync read the same log and log what they refuse
    # of it under their own names.)
    logged = [json.loads(line) for line in refused.stderr.splitlines() if line.startswith("{")]
    assert [(e["event"], e["position"], e["event_id"]) for e in logged if e["event"] == "dead_lettered"] == [
        ("dead_lettered", 1, None), ("dead_lettered", 2, "m9")
    ]
    result = backorders("dead-letters", "--jsonl", "--db", str(db))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["position"], r["event_id"]) for r in records] == [(1, None), (2, "m9")]
    assert records[0]["reason"].startswith("not valid JSON") and records[0]["raw"] == '{"oops"'
    assert records[1]["reason"] == "unknown order 'ghost'"
    assert all(r["source"] == str(bad.resolve()) for r in records)


def test_status_reports_dead_letters_and_outbox_backlog(tmp_path, small_log):
    db = tmp_path / "state.sqlite"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"oops"\n')
    assert backorders("run", str(small_log), "--db", str(db), "--no-progress").returncode == 0
    assert backorders("run", str(bad), "--db", str(db), "--no-progress").returncode == 0
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    result = subprocess.run([*BACKORDERS, "status", "--json", "--db", str(db)],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    published = backorders("search", "orders", "--backorder", "full-or-partial", "--jsonl", "--db", str(db))
    assert report["dead_letters"] == 1
    # o1, o2, o3 each published when created (with their SKU's total and position), and o3
    # and mug again when mug's stock arrived: twelve outbox events, none relayed yet.
    assert report["outbox_events"] == report["outbox_backlog"] == 12
    assert len(published.stdout.splitlines()) == 2
    assert report["lag"] == {}
