"""Kill the embedded runtime with SIGKILL at random points while it works through a log,
restart it each time, and check that nothing was lost or applied twice."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

from backorders_workload import WorkloadShape, generate_day, write_jsonl
from recalculator.cli.replay import replay

BACKORDERS = [sys.executable, "-m", "backorders_app.main"]


def start(log, db, env):
    return subprocess.Popen(
        [*BACKORDERS, "run", str(log), "--db", str(db), "--batch-size", "40", "--no-progress"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )


def committed_position(db) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            row = conn.execute("select max(position) from positions").fetchone()
        except sqlite3.OperationalError:
            return 0
    return row[0] or 0


def test_sigkill_at_random_points_loses_nothing_and_applies_nothing_twice(tmp_path):
    log = tmp_path / "day.jsonl"
    events = generate_day(5, WorkloadShape(orders=24000, skus=600))
    total = write_jsonl(events, log)
    expected_out, expected_dlq = tmp_path / "out.jsonl", tmp_path / "dlq.jsonl"
    tally = replay(str(log), str(expected_out), str(expected_dlq))

    db = tmp_path / "state.sqlite"
    env = {**os.environ, "BACKORDERS_DATA_DIR": str(tmp_path)}
    rng = random.Random(int(os.environ.get("CRASH_SEED", "20261127")))
    kills, attempts = [], 0
    while len(kills) < 3 and attempts < 20:
        attempts += 1
        before = committed_position(db)
        process = start(log, db, env)
        # Start-up (loading the state, reading and ordering the log) takes longer on a busy
        # machine: killed at a random moment once it has committed something of its own.
        deadline = time.monotonic() + 60
        while committed_position(db) == before and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.05, 0.5))
        if process.poll() is not None:
            break  # it finished before the kill: the log is done
        process.send_signal(signal.SIGKILL)
        process.wait()
        after = committed_position(db)
        kills.append((before, after))
    assert len(kills) >= 3, f"only {len(kills)} kills landed mid-run: {kills}"
    assert any(after > before for before, after in kills), "no kill let any batch commit first"

    final = start(log, db, env)
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()
    assert committed_position(db) == total

    with sqlite3.connect(db) as conn:
        outbox = [row[0] for row in conn.execute("select payload from outbox order by seq")]
        dead = conn.execute("select position, reason from dead_letters order by seq").fetchall()
        processed = conn.execute("select count(*) from processed_events").fetchone()[0]
    expected = expected_out.read_text().splitlines()
    ids = [json.loads(p)["id"] for p in outbox]
    lost = len(set(json.loads(p)["id"] for p in expected) - set(ids))
    print(f"\ncrash test: {total} inputs, kills at committed positions {kills}, "
          f"{len(outbox)} outputs (replay {len(expected)}), lost {lost}, "
          f"duplicate ids {len(ids) - len(set(ids))}, processed {processed} (replay applied {tally.applied})")
    assert len(ids) == len(set(ids)), "duplicate output ids"
    assert outbox == expected, "outputs differ from replay"
    assert processed == tally.applied, "an input was lost or applied twice"
    assert dead == [
        (d["position"], d["reason"]) for d in map(json.loads, expected_dlq.read_text().splitlines())
    ]
