"""`backorders serve` as a user starts it: a real process on a free loopback port over the
SQLite state of `backorders run EVENTS.jsonl`, answering what the replayed engine holds."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from backorders_workload import WorkloadShape, generate_day, write_jsonl
from recalculator.adapters.search import ORDER_FILTERS
from recalculator.domain.engine import Engine
from recalculator.processing import process
from recalculator.publishing import to_json
from recalculator.runtime.sequencing import in_log_order

BACKORDERS = [sys.executable, "-m", "backorders_app"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_answers_over_http(tmp_path):
    events = generate_day(5, WorkloadShape(orders=200, skus=20))
    log, db = tmp_path / "day.jsonl", tmp_path / "state.sqlite"
    write_jsonl(events, log)
    env = {**os.environ, "BACKORDERS_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([*BACKORDERS, "run", str(log), "--db", str(db), "--no-downstream", "--no-progress"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    expected = Engine()
    lines = [(e["__raw__"] if "__raw__" in e else to_json(e)).encode() for e in events]
    for item in in_log_order(enumerate(lines, 1)):
        process(expected, item.raw, "log", item.line, parsed=item.parsed)

    port = free_port()
    server = subprocess.Popen([*BACKORDERS, "serve", "--db", str(db), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"{base}/orders", params={"backorder": "full-or-partial", "limit": 500})
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "serve did not answer within 60 s"
                time.sleep(0.2)
        assert response.status_code == 200
        wanted = sorted((o for o in expected.orders.values() if o.published_status in ORDER_FILTERS["full-or-partial"]),
                        key=lambda o: (o.order_date, o.order_id))
        assert wanted and [i["order_id"] for i in response.json()["items"]] == [o.order_id for o in wanted][:500]
        order = wanted[0]
        body = httpx.get(f"{base}/orders/{order.order_id}").json()
        assert {line["line_id"]: line["published"] for line in body["lines"]} == {
            line.line_id: line.published for line in order.lines.values()}
        bad = httpx.get(f"{base}/orders", params={"backorder": "some"})
        assert bad.status_code == 422 and "backorder" in json.loads(bad.text)["detail"]
        assert "backorders_api_requests_total" in httpx.get(f"{base}/metrics").text
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_serve_with_several_worker_processes(tmp_path):
    events = generate_day(6, WorkloadShape(orders=60, skus=8))
    log, db = tmp_path / "day.jsonl", tmp_path / "state.sqlite"
    write_jsonl(events, log)
    env = {**os.environ, "BACKORDERS_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([*BACKORDERS, "run", str(log), "--db", str(db), "--no-downstream", "--no-progress"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    refused = subprocess.run([*BACKORDERS, "serve", "--db", str(db), "--workers", "0"],
                             capture_output=True, text=True, env=env)
    assert refused.returncode != 0 and "--workers" in refused.stderr

    port = free_port()
    server = subprocess.Popen([*BACKORDERS, "serve", "--db", str(db), "--port", str(port), "--workers", "2"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                page = httpx.get(f"{base}/orders", params={"limit": 500})
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "serve did not answer within 60 s"
                time.sleep(0.2)
        assert page.status_code == 200 and page.json()["total"] == len(page.json()["items"]) > 0
        for item in page.json()["items"][:20]:  # a new connection each
            response = httpx.get(f"{base}/orders/{item['order_id']}")
            assert response.status_code == 200 and response.json()["order_id"] == item["order_id"]
        children = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
        spawned = [pid for pid in children
                   if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")]
        assert len(spawned) == 2, children
    finally:
        server.terminate()
        server.wait(timeout=30)
