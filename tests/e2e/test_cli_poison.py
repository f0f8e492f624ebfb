"""Poison inputs through `backorders replay` and `backorders run EVENTS.jsonl`, as a user runs
them: each is dead-lettered with its reason, the line after it is applied, the command ends
normally (no traceback), and the stored dead letters hold the raw input (docs/behaviour.md,
"Limits")."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from backorder_events import DeadLetter
from backorder_events.limits import MAX_DEAD_LETTER_RAW_BYTES
from support import created, poison_inputs, poison_setup

BACKORDERS = [sys.executable, "-m", "backorders_app.main"]


@pytest.fixture
def poisoned_log(tmp_path):
    """A good order, the setup, then each poison followed by a good order; returns the file,
    {line number: (what, raw, reason)} of the poisons and the good orders' ids."""
    lines = [json.dumps(created("first", [("1", "SKU-A", 1)])).encode(), poison_setup()]
    poisons, good = {}, ["first"]
    for n, (what, raw, reason) in enumerate(poison_inputs()):
        assert b"\n" not in raw
        lines.append(raw)
        poisons[len(lines)] = (what, raw, reason)
        good.append(f"after-{n}")
        lines.append(json.dumps(created(good[-1], [("1", "SKU-A", 1)])).encode())
    path = tmp_path / "poisoned.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path, poisons, good


def backorders(*args, data_dir):
    env = {**os.environ, "BACKORDERS_DATA_DIR": str(data_dir)}
    return subprocess.run([*BACKORDERS, *args], capture_output=True, env=env)


def check_dead_letters(records: list[DeadLetter], poisons: dict) -> None:
    by_line = {record.position: record for record in records}
    assert sorted(by_line) == sorted(poisons), [(r.position, r.reason) for r in records]
    for line, (what, raw, reason) in poisons.items():
        record = by_line[line]
        assert reason in record.reason, (what, record.reason)
        assert "\n" not in record.reason
        if len(raw) > MAX_DEAD_LETTER_RAW_BYTES:
            assert record.raw_size == len(raw), what
            assert raw.startswith(record.original()), what
        else:
            assert record.original() == raw, what


def test_replay_dead_letters_each_poison_and_goes_on(tmp_path, poisoned_log):
    path, poisons, good = poisoned_log
    out, dlq = tmp_path / "out.jsonl", tmp_path / "dlq.jsonl"
    result = backorders("replay", str(path), "--out", str(out), "--dead-letter", str(dlq), data_dir=tmp_path)
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    assert "Traceback" not in stderr
    inputs = 2 + 2 * len(poisons)
    assert f"{inputs} inputs: {inputs - len(poisons)} applied, 0 duplicates skipped, " \
           f"{len(poisons)} dead-lettered" in stderr
    check_dead_letters([DeadLetter.model_validate_json(line) for line in dlq.read_bytes().splitlines()], poisons)
    published = {json.loads(line)["subject"] for line in out.read_bytes().splitlines()}
    assert set(good) <= published  # every good order after a poison was applied


def test_run_dead_letters_each_poison_and_goes_on(tmp_path, poisoned_log):
    path, poisons, good = poisoned_log
    db = tmp_path / "state.sqlite"
    result = backorders("run", str(path), "--db", str(db), "--no-progress", data_dir=tmp_path)
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    assert "Traceback" not in stderr
    inputs = 2 + 2 * len(poisons)
    assert f"{inputs} inputs: {inputs - len(poisons)} applied" in result.stdout.decode()
    # One log line per dead letter, each with its line.
    logged = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert sorted(e["position"] for e in logged if e["event"] == "dead_lettered") == sorted(poisons)

    listed = backorders("dead-letters", "--jsonl", "--db", str(db), data_dir=tmp_path)
    assert listed.returncode == 0, listed.stderr.decode()
    check_dead_letters([DeadLetter.model_validate_json(line) for line in listed.stdout.splitlines()], poisons)
    found = backorders("search", "orders", "--backorder", "full-or-partial", "--jsonl", "--db", str(db),
                       data_dir=tmp_path)
    assert found.returncode == 0, found.stderr.decode()
    assert {json.loads(line)["order_id"] for line in found.stdout.splitlines()} >= set(good)
    # The same log again: every line is at or before the stored position, nothing changes.
    again = backorders("run", str(path), "--db", str(db), "--no-progress", data_dir=tmp_path)
    assert again.returncode == 0 and "0 inputs" in again.stdout.decode()
