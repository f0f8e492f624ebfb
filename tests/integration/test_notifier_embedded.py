"""The notifier in the embedded runtime: a generated day through the recalculator into
SQLite, then `run_embedded` over the same inputs and the recalculator's outbox. With no
configuration every email is an `.eml` file; a second run writes nothing new; a run killed
half-way finishes the job when run again."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from backorders_app.downstream import notify as run_embedded
from backorders_platform.database import sqlite_url
from backorders_workload import WorkloadShape, generate_day
from notifier.config import from_mapping
from notifier.defaults import default_mapping
from notifier.domain.expected import day, parse
from notifier.domain.rules import notification_id
from recalculator.publishing import to_json
from recalculator.runtime.embedded import EmbeddedRuntime
from sqlalchemy import create_engine, text


@pytest.fixture(autouse=True)
def _no_configuration_from_the_environment(monkeypatch):
    monkeypatch.delenv("BACKORDERS_NOTIFIER_CONFIG", raising=False)


def generated(seed: int, orders: int, companies: int = 2) -> list[tuple[int, str]]:
    events = generate_day(seed, WorkloadShape(orders=orders, skus=40, companies=companies))
    return [(n, e["__raw__"] if "__raw__" in e else to_json(e)) for n, e in enumerate(events, 1)]


async def recalculate(url: str, records) -> None:
    async with EmbeddedRuntime(url) as runtime:
        await runtime.consume("generated", records)


def outbox(path: Path) -> list[dict]:
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        rows = conn.execute(text("select payload from outbox where event_type = 'BackorderChanged' order by seq"))
        events = [json.loads(row.payload) for row in rows]
    engine.dispose()
    return events


def customers(records) -> dict[str, str]:
    """Each order's customer email, straight from the generated OrderCreated events (and
    the split-off orders, which keep the original's customer)."""
    found = {}
    for _, raw in records:
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if event.get("type") == "OrderCreated" and event["data"].get("customer"):
            found.setdefault(str(event["data"]["order_id"]), event["data"]["customer"]["email"])
        elif event.get("type") == "OrderSplit" and str(event["data"]["order_id"]) in found:
            found.setdefault(str(event["data"]["new_order_id"]), found[str(event["data"]["order_id"])])
    return found


def expected_suffix(line: dict) -> str:
    """What #?OrderItemsDetails2?# adds after a line's quantities: its expected date."""
    if not line["backorder_qty"]:
        return ""
    shown = day(parse(line.get("expected_date")))
    return f", expected {shown}" if shown else ", expected date unknown"


def first_marking_per_order(marked: list[dict]) -> list[dict]:
    """Of the changes marking orders as backorders (in the order published), each order's
    first: the one the cool-down lets through within a day."""
    first: dict[str, dict] = {}
    for change in marked:
        first.setdefault(change["data"]["order_id"], change)
    return list(first.values())


def test_a_generated_day_writes_one_eml_per_order_marked_as_backorder_and_a_rerun_writes_nothing(tmp_path):
    records = generated(3, 600)
    db = tmp_path / "demo.sqlite"
    url = sqlite_url(db)
    asyncio.run(recalculate(url, records))
    changes = outbox(db)
    marked = [c for c in changes if c["data"]["previous_status"] == "None" and c["data"]["status"] != "None"]
    assert len(marked) > 50

    first = first_marking_per_order(marked)
    assert len(first) < len(marked)  # some orders are marked again later in the day

    summary = asyncio.run(run_embedded(url, records, "generated", data_dir=tmp_path))
    rows = dict(summary.rows)
    mail = tmp_path / "mail"
    files = sorted(mail.glob("*.eml"))
    # The day is shorter than the default cool-down (a day): one email per order.
    assert rows["emails written to files (this run)"] == len(first) == len(files)
    assert rows["orders marked as backorder (this run)"] == len(marked)
    assert rows["suppressed by the cool-down (all time)"] == len(marked) - len(first)
    assert rows["failed (all time)"] == 0 and rows["waiting for customer data (all time)"] == 0
    assert {f.stem for f in files} == {notification_id(c["id"]) for c in first}

    emails = customers(records)
    by_id = {notification_id(c["id"]): c for c in marked}
    for file in files:
        message = email.message_from_bytes(file.read_bytes(), policy=email.policy.default)
        change = by_id[file.stem]
        order_id = change["data"]["order_id"]
        assert message["To"].addresses[0].addr_spec == emails[order_id]
        assert message["Subject"] == f"Your order {order_id} is on backorder"
        assert message["Message-ID"] == f"<{file.stem}@backorders.localhost>"
        listed = [row for row in message.get_body(("plain",)).get_content().splitlines() if row.startswith("- ")]
        assert len(listed) == len(change["data"]["lines"])
        for row, line in zip(listed, change["data"]["lines"]):
            shown = f"{line['qty']} ordered, {line['backorder_qty']} backordered{expected_suffix(line)}"
            # "- Name (SKU): …", or "- SKU: …" for a line whose product name is not known
            assert row.endswith(f"{line['sku']}): {shown}") or row == f"- {line['sku']}: {shown}"
        assert message.get_body(("html",)) is not None

    stamps = {f: f.stat().st_mtime_ns for f in files}
    again = asyncio.run(run_embedded(url, records, "generated", data_dir=tmp_path))
    assert dict(again.rows)["emails written to files (this run)"] == 0
    assert dict(again.rows)["orders marked as backorder (this run)"] == 0
    assert {f: f.stat().st_mtime_ns for f in sorted(mail.glob("*.eml"))} == stamps
    # The recalculator's tables are read, never written.
    assert outbox(db) == changes


def test_a_configuration_file_and_a_template_without_profile(tmp_path):
    records = generated(4, 300, companies=3)
    url = sqlite_url(tmp_path / "demo.sqlite")
    asyncio.run(recalculate(url, records))
    config = tmp_path / "notifier.toml"
    config.write_text(textwrap.dedent("""
        [profiles.files]
        type = "file"
        directory = "outbox"

        [templates.notice]
        subject = "#?CompanyName?#: order #?OrderID?#"
        sender_email = "orders@thirstytea.example"
        profile = "files"
        text = "Dear #?FirstName?#"

        [templates.unsent]
        subject = "order #?OrderID?#"
        sender_email = "orders@thirstytea.example"
        text = "Dear #?FirstName?#"

        [companies.company-1]
        name = "Thirsty Tea"
        [companies.company-1.assignments]
        EmailCustomerForBackOrder = "notice"

        [companies.company-2.assignments]
        EmailCustomerForBackOrder = "unsent"
    """))
    summary = dict(asyncio.run(run_embedded(url, records, "generated", data_dir=tmp_path, config_path=config)).rows)
    written = sorted((tmp_path / "outbox").glob("*.eml"))
    assert summary["emails written to files (this run)"] == len(written) > 0
    assert summary["failed (all time)"] > 0  # company-2's template has no profile
    assert summary["no template assigned (this run)"] > 0  # company-3 has none
    subjects = {email.message_from_bytes(f.read_bytes(), policy=email.policy.default)["Subject"].split(":")[0]
                for f in written}
    assert subjects == {"Thirsty Tea"}


def test_a_run_killed_half_way_finishes_when_run_again(tmp_path):
    records = generated(5, 800)
    path = tmp_path / "demo.sqlite"
    asyncio.run(recalculate(sqlite_url(path), records))
    log = tmp_path / "records.json"
    log.write_text(json.dumps(records))
    script = textwrap.dedent(f"""
        import asyncio, json, sys
        from pathlib import Path
        from backorders_app.downstream import notify as run_embedded
        records = [tuple(r) for r in json.loads(Path({str(log)!r}).read_text())]
        asyncio.run(run_embedded({sqlite_url(path)!r}, records, "generated", data_dir=Path({str(tmp_path)!r})))
    """)
    mail = tmp_path / "mail"
    process = subprocess.Popen([sys.executable, "-c", script], env={**os.environ})
    try:
        while len(list(mail.glob("*.eml"))) < 20:  # killed while the files are being written
            assert process.poll() is None, "the run ended before it could be killed"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    partial = len(list(mail.glob("*.eml")))
    summary = dict(asyncio.run(run_embedded(sqlite_url(path), records, "generated", data_dir=tmp_path)).rows)
    marked = [c for c in outbox(path) if c["data"]["previous_status"] == "None" and c["data"]["status"] != "None"]
    first = first_marking_per_order(marked)
    files = {f.stem for f in mail.glob("*.eml")}
    assert files == {notification_id(c["id"]) for c in first}
    assert not list(mail.glob("*.part"))
    assert summary["delivered (all time)"] == len(first)
    print(f"\nembedded notifier killed after {partial} of {len(first)} files; the second run wrote the rest")
    assert partial < len(first), "the kill came after the last file"


def test_a_database_without_the_recalculator_tables_is_taken_as_empty(tmp_path):
    url = sqlite_url(tmp_path / "empty.sqlite")
    summary = dict(asyncio.run(run_embedded(url, [], "nothing", data_dir=tmp_path)).rows)
    assert summary["orders marked as backorder (this run)"] == 0


@pytest.mark.parametrize("cooldown", [None, 0], ids=["default-cooldown", "no-cooldown"])
def test_marked_by_recalculation_or_by_mark_backorder_one_email_per_transition(tmp_path, cooldown):
    def event(n: int, type_: str, data: dict) -> tuple[int, str]:
        return n, json.dumps({"specversion": "1.0", "id": f"e{n}", "source": "/test", "type": type_,
                              "time": f"2025-04-30T10:{n:02d}:00Z", "data": data})

    customer = {"email": "colin@example.com", "first_name": "Colin", "last_name": "Customerson"}
    log = [
        event(1, "InventoryAdjusted", {"sku": "cat-hammock", "warehouse_id": "W1", "set_to": 5}),
        # In stock: no backorder, no email.
        event(2, "OrderCreated", {"order_id": "5145827", "order_date": "2025-04-30T10:02:00Z",
                                  "payment_status": "Charged", "customer": customer,
                                  "lines": [{"line_id": "1", "sku": "cat-hammock", "qty": 2, "name": "Cat Hammock"}]}),
        # A seller marks it as a backorder by hand: None -> Full, manual.
        event(3, "MarkBackorder", {"order_ids": ["5145827"]}),
        # The recalculation gives the stock back: Full -> None, no email.
        event(4, "RecalculateBackorders", {}),
        # Stock gone, recalculated: None -> Full again, a second email.
        event(5, "InventoryAdjusted", {"sku": "cat-hammock", "warehouse_id": "W1", "set_to": 1,
                                       "recalculate": True}),
        # Partial -> Full: already a backorder, no email.
        event(6, "InventoryAdjusted", {"sku": "cat-hammock", "warehouse_id": "W1", "set_to": 0,
                                       "recalculate": True}),
    ]
    path = tmp_path / "state.sqlite"
    asyncio.run(recalculate(sqlite_url(path), log))
    changes = [(c["data"]["previous_status"], c["data"]["status"], c["data"]["reason"]) for c in outbox(path)]
    assert changes == [("None", "Full", "manual"), ("Full", "None", "recalculation"),
                       ("None", "Partial", "recalculation"), ("Partial", "Full", "recalculation")]
    mapping = default_mapping(tmp_path)
    if cooldown is not None:
        mapping["notifier"]["cooldown_minutes"] = cooldown
    config = from_mapping(mapping, "test", base=tmp_path)
    summary = dict(asyncio.run(run_embedded(sqlite_url(path), log, "generated", data_dir=tmp_path,
                                            config=config)).rows)
    files = sorted((tmp_path / "mail").glob("*.eml"))
    if cooldown is None:
        # The second marking comes two minutes after the first email: within the default
        # cool-down of a day, recorded as suppressed.
        assert summary["emails written to files (this run)"] == len(files) == 1
        assert summary["suppressed by the cool-down (all time)"] == 1
        return
    assert summary["emails written to files (this run)"] == len(files) == 2
    bodies = [email.message_from_bytes(f.read_bytes(), policy=email.policy.default).get_body(("plain",)).get_content()
              for f in files]
    assert sorted("2 ordered, 2 backordered" in b for b in bodies) == [False, True]
    assert sorted("2 ordered, 1 backordered" in b for b in bodies) == [False, True]


def test_a_configuration_loaded_beforehand_is_used_as_it_is(tmp_path, monkeypatch):
    # `backorders run` checks the configuration before the recalculator starts and hands
    # the loaded one over; the file is not read again (here it has broken since).
    from notifier.configured import load_configured

    records = generated(5, 100)
    url = sqlite_url(tmp_path / "demo.sqlite")
    asyncio.run(recalculate(url, records))
    file = tmp_path / "notifier.toml"
    file.write_text('[profiles.files]\ntype = "file"\ndirectory = "checked-outbox"\n\n'
                    '[templates.notice]\nsubject = "order #?OrderID?#"\nsender_email = "orders@example.com"\n'
                    'profile = "files"\ntext = "Dear #?FirstName?#"\n\n'
                    '[companies."*".assignments]\nEmailCustomerForBackOrder = "notice"\n')
    monkeypatch.setenv("BACKORDERS_NOTIFIER_CONFIG", str(file))
    config = load_configured(data_dir=tmp_path)
    file.write_text("[profiles\n")
    summary = dict(asyncio.run(run_embedded(url, records, "generated", data_dir=tmp_path, config=config)).rows)
    written = list((tmp_path / "checked-outbox").glob("*.eml"))
    assert summary["emails written to files (this run)"] == len(written) > 0
    assert summary["configuration"] == str(file)
