"""`backorders notifier validate|preview|failed|resend` and the emails of `backorders run`,
as a user runs them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from backorders_app.downstream import notify as run_embedded
from backorders_platform.database import sqlite_url
from backorders_workload import WorkloadShape, generate_day
from integration.test_notifier_smtp import Recorder, smtp_server
from recalculator.publishing import to_json
from recalculator.runtime.embedded import EmbeddedRuntime

ROOT = Path(__file__).resolve().parents[2]
BACKORDERS = [sys.executable, "-m", "backorders_app.main"]


def backorders(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*BACKORDERS, *args], capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, **(env or {})}, cwd=ROOT)


def test_validate_accepts_the_example_and_explains_what_is_wrong(tmp_path):
    ok = backorders("notifier", "validate", "--config", "deploy/notifier.example.toml",
                    env={"BACKORDERS_SMTP_PASSWORD": "x"})
    assert ok.returncode == 0, ok.stderr
    assert "company default: EmailCustomerForBackOrder -> backorder-notice, cool-down 1440 min" in ok.stdout
    assert "warning" not in ok.stdout

    strict = backorders("notifier", "validate", "--config", "deploy/notifier.example.toml", "--strict",
                        env={"BACKORDERS_SMTP_PASSWORD": ""})
    assert strict.returncode == 1
    assert "warning: profile 'main': password environment variable BACKORDERS_SMTP_PASSWORD is not set" in strict.stdout

    bad = tmp_path / "bad.toml"
    bad.write_text(textwrap.dedent("""
        [templates.notice]
        subject = "Order #?OrderID?#"
        sender_email = "orders@example.com"
        html = \"\"\"<p>Dear #?FirstName?#,</p>
        <p>#?OrderItemDetails?#</p>\"\"\"
    """))
    refused = backorders("notifier", "validate", "--config", str(bad))
    assert refused.returncode == 2
    assert ("template 'notice', HTML body (line 2 of the html value): unknown placeholder #?OrderItemDetails?# "
            "(did you mean #?OrderItemsDetails?#)") in refused.stderr


def test_run_writes_the_emails_and_preview_shows_one_without_sending(tmp_path):
    run = backorders("run", "--orders", "300", "--skus", "30", "--no-progress",
                     env={"BACKORDERS_DATA_DIR": str(tmp_path), "COLUMNS": "200", "BACKORDERS_NOTIFIER_CONFIG": ""})
    assert run.returncode == 0, run.stderr[-2000:]
    files = sorted((tmp_path / "demo" / "mail").glob("*.eml"))
    assert files
    written = next(line for line in run.stdout.splitlines() if "emails written to files (this run)" in line)
    assert written.split("│")[-2].strip() == f"{len(files):,}"

    demo = tmp_path / "demo.sqlite"
    message = files[0].read_text()
    order_id = next(line for line in message.splitlines() if line.startswith("Subject:")).split()[3]
    preview = backorders("notifier", "preview", order_id, "--db", str(demo),
                         env={"BACKORDERS_DATA_DIR": str(tmp_path)})
    assert preview.returncode == 0, preview.stderr
    assert f"Message-ID: <{files[0].stem}@backorders.localhost>" in preview.stdout
    assert "not sent" in preview.stderr
    html = backorders("notifier", "preview", order_id, "--db", str(demo), "--part", "html")
    assert html.stdout.startswith("<!DOCTYPE html>") and "<table" in html.stdout
    assert len(list((tmp_path / "demo" / "mail").glob("*.eml"))) == len(files)  # nothing was sent

    unknown = backorders("notifier", "preview", "no-such-order", "--db", str(demo))
    assert unknown.returncode == 2 and "no-such-order" in unknown.stderr


def test_failed_lists_what_could_not_be_sent_and_resend_sends_it(tmp_path):
    events = generate_day(6, WorkloadShape(orders=200, skus=30))
    records = [(n, e["__raw__"] if "__raw__" in e else to_json(e)) for n, e in enumerate(events, 1)]
    db = tmp_path / "state.sqlite"

    async def prepare(config: Path):
        async with EmbeddedRuntime(sqlite_url(db)) as runtime:
            await runtime.consume("generated", records)
        return await run_embedded(sqlite_url(db), records, "generated", data_dir=tmp_path, config_path=config)

    template = textwrap.dedent("""
        [templates.notice]
        subject = "Order #?OrderID?#"
        sender_email = "orders@example.com"
        text = "Dear #?FirstName?#"
        {profile}

        [companies."*".assignments]
        EmailCustomerForBackOrder = "notice"
    """)
    broken = tmp_path / "broken.toml"
    broken.write_text(template.format(profile=""))
    failed_count = dict(asyncio.run(prepare(broken)).rows)["failed (all time)"]
    assert failed_count > 0

    listed = backorders("notifier", "failed", "--db", str(db), "--jsonl")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(rows) == failed_count
    assert {row["reason"] for row in rows} == {"template 'notice' has no SMTP profile"}
    table = backorders("notifier", "failed", "--db", str(db), env={"COLUMNS": "250"})
    assert f"Failed notifications ({failed_count})" in table.stdout and rows[0]["order_id"] in table.stdout

    nothing = backorders("notifier", "resend", "--db", str(db))
    assert nothing.returncode == 2 and "--all" in nothing.stderr

    handler = Recorder()
    with smtp_server(handler) as server:
        fixed = tmp_path / "fixed.toml"
        fixed.write_text(template.format(profile='profile = "main"') + textwrap.dedent(f"""
            [profiles.main]
            type = "smtp"
            host = "127.0.0.1"
            port = {server.port}
            security = "none"
        """))
        one = backorders("notifier", "resend", rows[0]["notification_id"], "--db", str(db), "--config", str(fixed))
        assert one.returncode == 0, one.stderr
        assert "queued again: 1; delivered: 1; failed: 0" in one.stdout
        rest = backorders("notifier", "resend", "--all", "--db", str(db), "--config", str(fixed))
        assert rest.returncode == 0, rest.stderr
        assert f"queued again: {failed_count - 1}; delivered: {failed_count - 1}; failed: 0" in rest.stdout
    assert len(handler.received) == failed_count
    assert backorders("notifier", "failed", "--db", str(db), "--jsonl").stdout == ""


def test_preview_shows_the_change_that_sends_the_email_not_a_later_one(tmp_path):
    from integration.test_notifier_smtp import backorder_changed, order_created

    db = tmp_path / "state.sqlite"
    marked = backorder_changed("o1", id="bc-1", status="Full", time="2025-04-30T10:00:00Z")
    cleared = backorder_changed("o1", id="bc-2", previous="Full", status="None", time="2025-04-30T12:00:00Z",
                                lines=(("1", "cat-hammock", 2, 0),))
    records = [(1, order_created("o1")), (2, marked), (3, cleared), (4, order_created("o2")),
               (5, backorder_changed("o2", id="bc-3", previous="Partial", status="None",
                                     lines=(("1", "cat-hammock", 2, 0),)))]
    asyncio.run(run_embedded(sqlite_url(db), records, "log", data_dir=tmp_path))
    [sent] = (tmp_path / "mail").glob("*.eml")
    env = {"BACKORDERS_DATA_DIR": str(tmp_path), "BACKORDERS_NOTIFIER_CONFIG": ""}

    # The order's last change (Full -> None) sends no email: the one shown is the email sent,
    # for the change that marked the order as a backorder.
    preview = backorders("notifier", "preview", "o1", "--db", str(db), env=env)
    assert preview.returncode == 0, preview.stderr
    assert f"Message-ID: <{sent.stem}@backorders.localhost>" in preview.stdout
    assert preview.stdout.replace("\n", "\r\n").encode() == sent.read_bytes()
    named = backorders("notifier", "preview", "o1", "--notification", sent.stem, "--db", str(db), env=env)
    assert named.returncode == 0 and named.stdout == preview.stdout
    other = backorders("notifier", "preview", "o1", "--notification", "no-such-id", "--db", str(db), env=env)
    assert other.returncode == 2 and "order o1 has no notification no-such-id" in other.stderr
    # An order never marked as a backorder has no email to show.
    none = backorders("notifier", "preview", "o2", "--db", str(db), env=env)
    assert none.returncode == 2
    assert "its last BackorderChanged (Partial -> None) sends no email" in none.stderr
