"""The API's actions and operations on the embedded runtime (SQLite and PostgreSQL): an
action is appended to the runtime's log file, never to the state; the runtime following
the log applies it and the API then answers the state a replay of the day and the action
leaves. The token is needed (401 without, 403 with another), bad input is a 4xx, and a dead
letter's corrected input goes to the log as a new event."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx
import pytest
from backorders_platform.database import sqlite_url
from backorders_platform.migrations import drop_schema
from backorders_workload import WorkloadShape, generate_day
from conftest import postgres_url
from recalculator.api.app import create_app
from recalculator.api.auth import Guard
from recalculator.api.input_log import FileInputLog
from recalculator.api.wiring import Services
from recalculator.domain.engine import Engine
from recalculator.processing import process
from recalculator.publishing import to_json
from recalculator.runtime.embedded import EmbeddedRuntime
from recalculator.runtime.followed_log import FollowedLog
from recalculator.runtime.sequencing import in_log_order

TOKEN = "a-long-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def day_lines(seed: int = 31):
    events = generate_day(seed, WorkloadShape(orders=200, skus=20))
    return [(n, (e["__raw__"] if "__raw__" in e else to_json(e)).encode()) for n, e in enumerate(events, 1)], events


def replayed(*logs: list[tuple[int, bytes]]) -> Engine:
    """The engine a replay of the logs leaves (each in its own order, one after the other,
    as the runtime applied them)."""
    engine = Engine()
    for number, records in enumerate(logs):
        for item in in_log_order(records):
            process(engine, item.raw, f"log{number}", item.line, parsed=item.parsed)
    return engine


@pytest.fixture(params=["sqlite", "postgresql"])
async def served(request, tmp_path):
    """The day in the state; the API over it with a token, its log file followed by the
    embedded runtime in the same process."""
    records, events = day_lines()
    if request.param == "sqlite":
        url, schema = sqlite_url(tmp_path / "state.sqlite"), None
    else:
        url, schema = postgres_url(), f"test_actions_{uuid.uuid4().hex[:10]}"
    async with EmbeddedRuntime(url, schema=schema) as runtime:
        await runtime.consume("day", records)
    log = tmp_path / "actions.jsonl"
    follower = FollowedLog(url, log, schema, every_seconds=0.5)
    services = Services(guard=Guard(TOKEN.encode()), input_log=FileInputLog(log), follower=follower)
    app = create_app(url, schema, services=services)
    try:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
                yield http, records, events, log, follower
    finally:
        if schema:
            await drop_schema(url, schema)


async def until(check, seconds: float = 20.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while True:
        found = await check()
        if found:
            return found
        assert loop.time() < end, "the state did not show the action in time"
        await asyncio.sleep(0.1)


def log_lines(log: Path) -> list[tuple[int, bytes]]:
    return [(n, line) for n, line in enumerate(log.read_bytes().splitlines(), 1)]


async def test_an_action_goes_through_the_log_and_the_api_shows_what_a_replay_gives(served):
    http, records, events, log, follower = served
    full = (await http.get("/orders", params={"backorder": "full", "limit": 500})).json()["items"]
    partial = (await http.get("/orders", params={"backorder": "partial", "limit": 500})).json()["items"]
    assert full and partial
    chosen = [full[0]["order_id"], partial[0]["order_id"]]
    answer = await http.post("/actions/mark-not-backorder", headers=AUTH,
                             json={"data": {"order_ids": chosen}, "time": events[-1]["time"]})
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert accepted["event_type"] == "MarkNotBackorder" and accepted["log"] == "file" and accepted["position"] == 1
    uuid.UUID(accepted["event_id"])  # the server's id
    # In the log, as the contract's event; never in the state by the API itself.
    [(_, raw)] = log_lines(log)
    event = json.loads(raw)
    assert event["id"] == accepted["event_id"] and event["data"] == {"order_ids": chosen}

    expected = replayed(records, log_lines(log))

    async def applied():
        views = [(await http.get(f"/orders/{o}")).json() for o in chosen]
        return views if all(v["backorder_status"] == expected.orders[o].published_status
                            for v, o in zip(views, chosen, strict=True)) else None

    views = await until(applied)
    for view, order_id in zip(views, chosen, strict=True):
        assert view["backorder_status"] != "Full"
        assert {line["line_id"]: line["published"] for line in view["lines"]} == {
            line.line_id: line.published for line in expected.orders[order_id].lines.values()}
        assert all(line["manual"] for line in view["lines"])

    # A reallocation of one line, with an id of the caller: sent twice, applied once.
    order_id = partial[1]["order_id"] if len(partial) > 1 else full[1]["order_id"]
    line = (await http.get(f"/orders/{order_id}")).json()["lines"][0]
    body = {"id": "realloc-1", "time": events[-1]["time"],
            "data": {"order_id": order_id, "lines": [{"line_id": line["line_id"], "backorder_qty": line["qty"]}]}}
    for _ in range(2):
        again = await http.post("/actions/reallocate", headers=AUTH, json=body)
        assert again.status_code == 202 and again.json()["event_id"] == "realloc-1"
    assert len(log_lines(log)) == 3
    expected = replayed(records, log_lines(log))

    async def reallocated():
        view = (await http.get(f"/orders/{order_id}")).json()
        published = {x["line_id"]: x["published"] for x in view["lines"]}
        return published == {x.line_id: x.published for x in expected.orders[order_id].lines.values()} and view

    view = await until(reallocated)
    assert view["lines"][0]["published"] == line["qty"]

    async def all_applied():
        status = (await http.get("/operations/status")).json()
        return status["positions"].get(str(log.resolve())) == 3 and status

    assert (await until(all_applied))["lag"] is None
    assert (await http.get(f"/orders/{order_id}")).json()["lines"][0]["published"] == line["qty"]


async def test_actions_need_the_token(served):
    http, _, _, log, _ = served
    body = {"data": {"order_ids": ["1"]}}
    missing = await http.post("/actions/mark-backorder", json=body)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "token" in missing.json()["detail"]
    wrong = await http.post("/actions/mark-backorder", json=body, headers={"Authorization": "Bearer not-it"})
    assert wrong.status_code == 403 and "not the API's token" in wrong.json()["detail"]
    basic = await http.post("/actions/mark-backorder", json=body, headers={"Authorization": "Basic eDp5"})
    assert basic.status_code == 401
    resubmit = await http.post("/dead-letters/1/resubmit", json={"type": "x"})
    assert resubmit.status_code == 401
    assert not log.exists()  # nothing was published
    assert TOKEN not in (await http.get("/console/orders")).text


@pytest.mark.parametrize("body", [
    {}, {"data": {}}, {"data": {"order_ids": []}}, {"data": {"order_ids": ["a\u0000"]}},
    {"data": {"order_ids": ["x" * 300]}}, {"data": {"order_ids": ["1"]}, "time": "9999-01-01T00:00:00Z"},
    {"data": {"order_ids": ["1"]}, "time": "yesterday"}, {"data": {"order_ids": ["1"]}, "extra": 1},
    {"data": {"order_ids": "1"}}, [1], "text", None,
])
async def test_bad_actions_are_a_4xx_with_a_reason_and_publish_nothing(served, body):
    http, _, _, log, _ = served
    answer = await http.post("/actions/mark-backorder", headers=AUTH, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"]
    assert not log.exists()


async def test_a_body_that_is_not_json_is_a_422(served):
    http, _, _, log, _ = served
    for content, kind in ((b"{not json", "application/json"), (b"order_ids=1", "application/x-www-form-urlencoded"),
                          (b"\xff\xfe", "application/json")):
        answer = await http.post("/actions/recalculate", headers={**AUTH, "content-type": kind}, content=content)
        assert answer.status_code == 422, answer.text
    assert not log.exists()


async def test_dead_letters_are_browsed_downloaded_and_resubmitted_corrected(served):
    http, records, events, log, _ = served
    page = (await http.get("/dead-letters")).json()
    assert page["total"] >= 2 and page["items"]
    unknown_type = (await http.get("/dead-letters", params={"reason": "UNKNOWN EVENT TYPE"})).json()["items"]
    assert unknown_type and all("unknown event type" in d["reason"] for d in unknown_type)
    by_type = (await http.get("/dead-letters", params={"event_type": "ItemAdded"})).json()["items"]
    assert all(d["event_type"] == "ItemAdded" for d in by_type)
    assert (await http.get("/dead-letters", params={"reason": "%"})).json()["total"] == 0  # no wildcard
    # The raw input, byte for byte as it was read.
    raw_of = dict(records)
    for letter in page["items"]:
        download = await http.get(f"/dead-letters/{letter['seq']}/raw")
        assert download.status_code == 200 and download.content == raw_of[letter["position"]]
        assert "attachment" in download.headers["content-disposition"]
    assert (await http.get("/dead-letters/999999")).status_code == 404
    assert (await http.get("/dead-letters/0")).status_code == 422
    # An ItemAdded refused for a quantity of 0, corrected and sent again: a new event.
    letter = next((d for d in page["items"] if d["event_type"] == "ItemAdded" and "greater than 0" in d["reason"]), None)
    assert letter is not None, [d["reason"] for d in page["items"]]
    corrected = json.loads(raw_of[letter["position"]])
    corrected["data"]["line"]["qty"] = 2
    bad = await http.post(f"/dead-letters/{letter['seq']}/resubmit", headers=AUTH, json={**corrected, "type": "Nope"})
    assert bad.status_code == 422 and "unknown event type" in bad.json()["detail"]
    answer = await http.post(f"/dead-letters/{letter['seq']}/resubmit", headers=AUTH, json=corrected)
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert accepted["replaces"] == letter["seq"] and accepted["event_id"] != corrected["id"]
    [(_, raw)] = log_lines(log)
    assert json.loads(raw) == {**corrected, "id": accepted["event_id"]}
    expected = replayed(records, log_lines(log))
    order_id = corrected["data"]["order_id"]
    line_id = corrected["data"]["line"]["line_id"]

    async def added():
        view = (await http.get(f"/orders/{order_id}")).json()
        return any(x["line_id"] == line_id for x in view.get("lines", [])) and view

    view = await until(added)
    assert {x["line_id"]: x["published"] for x in view["lines"]} == {
        x.line_id: x.published for x in expected.orders[order_id].lines.values()}


async def test_reads_may_require_the_token_and_the_console_signs_in_for_reads_only(tmp_path):
    url = sqlite_url(tmp_path / "state.sqlite")
    records, _ = day_lines(32)
    async with EmbeddedRuntime(url) as runtime:
        await runtime.consume("day", records)
    log = tmp_path / "actions.jsonl"
    app = create_app(url, services=Services(guard=Guard(TOKEN.encode(), read_requires_token=True),
                                            input_log=FileInputLog(log)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        assert (await http.get("/orders")).status_code == 401
        assert (await http.get("/orders", headers={"Authorization": "Bearer nope"})).status_code == 403
        assert (await http.get("/orders", headers=AUTH)).status_code == 200
        assert (await http.get("/dead-letters")).status_code == 401
        page = await http.get("/console/orders")
        assert page.status_code == 303 and page.headers["location"] == "/console/sign-in"
        refused = await http.post("/console/sign-in", data={"token": "nope"})
        assert refused.status_code == 303 and "failed" in refused.headers["location"]
        signed = await http.post("/console/sign-in", data={"token": TOKEN})
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"]
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower() and TOKEN not in cookie
        grid = await http.get("/console/orders")
        assert grid.status_code == 200 and "<table>" in grid.text and TOKEN not in grid.text
        assert (await http.get("/orders")).status_code == 200  # the session reads
        # ... and never acts: a cross-site form brings the cookie, not the header.
        acted = await http.post("/actions/recalculate", json={"data": {}})
        assert acted.status_code == 401 and not log.exists()
    await app.state.db.dispose()


async def test_actions_without_a_log_or_without_a_token_say_why(tmp_path):
    url = sqlite_url(tmp_path / "state.sqlite")
    async with EmbeddedRuntime(url):
        pass
    for services, status, words in ((Services(guard=Guard(TOKEN.encode())), 503, "no input log"),
                                    (Services(input_log=FileInputLog(tmp_path / "log")), 403, "disabled")):
        app = create_app(url, services=services)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
            answer = await http.post("/actions/recalculate", headers=AUTH, json={"data": {}})
            assert answer.status_code == status and words in answer.json()["detail"]
        await app.state.db.dispose()
    assert not (tmp_path / "log").exists()


async def test_the_consistency_audit_replays_the_logs_and_lists_the_orders_that_differ(tmp_path):
    from recalculator.adapters import tables as t
    from recalculator.adapters.codec import order_row
    from recalculator.api.audit import audit
    from sqlalchemy import update

    records, events = day_lines(33)
    day = tmp_path / "day.jsonl"
    day.write_bytes(b"".join(raw + b"\n" for _, raw in records))
    url = sqlite_url(tmp_path / "state.sqlite")
    async with EmbeddedRuntime(url) as runtime:
        await runtime.consume(str(day.resolve()), records)
    log = tmp_path / "actions.jsonl"
    follower = FollowedLog(url, log)
    app = create_app(url, services=Services(guard=Guard(TOKEN.encode()), input_log=FileInputLog(log),
                                            follower=follower))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
            # An action after the day (the server's time: now), applied by the follower.
            assert (await http.post("/actions/recalculate", headers=AUTH, json={"data": {}})).status_code == 202

            async def applied():
                status = (await http.get("/operations/status")).json()
                return status["positions"].get(str(log.resolve())) == 1

            await until(applied)
            found = await audit(url, None)
            assert found["replayed_from"] == [str(day.resolve()), str(log.resolve())]
            assert found["differences"] == []
            # A state written behind the log's back is what the audit is for.
            full = (await http.get("/orders", params={"backorder": "full"})).json()["items"][0]["order_id"]
    await app.state.db.dispose()
    async with EmbeddedRuntime(url) as runtime:
        order = runtime.engine.orders[full]
        for line in order.lines.values():
            line.published = 0
        order.published_status = "None"
        async with runtime.db.begin() as conn:
            await conn.execute(update(t.orders).where(t.orders.c.order_id == full).values(**order_row(order)))
    found = await audit(url, None)
    assert [d["order_id"] for d in found["differences"]] == [full]
    # A log that cannot be read again: nothing compared, and said so.
    day.unlink()
    found = await audit(url, None)
    assert found["differences"] is None and found["not_replayable"] == [str(day.resolve())]
