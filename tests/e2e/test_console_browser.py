"""The web console in a real headless browser: Debian's Chromium (deploy/chromium.sh
installs it when missing), driven by Playwright, which never downloads a browser of its
own. `backorders serve` runs as a process over the SQLite state of a generated day, with a
token and its action log applied by the server (`--log … --apply`).

Filter the order grid, open an order, run an action without the token (401), with a wrong
one (403), then with the right one (the event id, and the state showing it); re-submit a
corrected dead letter. With BACKORDERS_SCREENSHOTS=DIR the main pages are saved there
(docs/screenshots holds the README's)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from backorders_workload import WorkloadShape, generate_day, write_jsonl

from e2e.test_api_serve import BACKORDERS, free_port

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
TOKEN = "console-test-token-5d1f"
ROOT = Path(__file__).resolve().parents[2]


def chromium_or_fail() -> None:
    """The browser, installed when missing; when it cannot be had, fail under CI (a skipped
    browser test proves nothing), skip elsewhere, saying why."""
    def runs() -> bool:
        try:
            return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--version"], capture_output=True,
                                  timeout=60).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    if runs():
        return
    done = subprocess.run(["bash", str(ROOT / "deploy" / "chromium.sh")], capture_output=True, text=True)
    if done.returncode == 0 and runs():
        return
    why = f"no usable {CHROMIUM}: deploy/chromium.sh said {done.stderr.strip()[-300:]!r}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    chromium_or_fail()
    folder = tmp_path_factory.mktemp("console")
    events = generate_day(7, WorkloadShape(orders=300, skus=25))
    log, db, actions = folder / "day.jsonl", folder / "state.sqlite", folder / "actions.jsonl"
    write_jsonl(events, log)
    env = {**os.environ, "BACKORDERS_DATA_DIR": str(folder / "data"), "BACKORDERS_API_TOKEN": TOKEN}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)  # the embedded runtime: actions go to the log file
    done = subprocess.run([*BACKORDERS, "run", str(log), "--db", str(db), "--no-downstream", "--no-progress"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    port = free_port()
    process = subprocess.Popen([*BACKORDERS, "serve", "--db", str(db), "--port", str(port), "--log", str(actions),
                                "--apply"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{base}/orders", params={"limit": 1})
            break
        except httpx.TransportError:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "serve did not answer within 60 s"
            time.sleep(0.2)
    yield base, actions
    process.terminate()
    _, errors = process.communicate(timeout=30)
    assert TOKEN not in errors.decode(), "the token reached the server's log"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")), executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1280, "height": 900})
        yield context
        context.close()


def shoot(page, name: str) -> None:
    folder = os.environ.get("BACKORDERS_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=False)


def result_of(page) -> str:
    page.wait_for_function("() => { const r = document.getElementById('result'); "
                           "return r.textContent && r.textContent !== 'sending…'; }")
    return page.inner_text("#result")


def test_filter_open_an_order_and_act_with_and_without_the_token(server, browser):
    base, actions = server
    page = browser.new_page()
    page.goto(f"{base}/console/orders")
    page.select_option("select[name=backorder]", "full")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"backorder=full"))
    statuses = page.locator("tbody tr td:nth-child(4)").all_inner_texts()
    assert statuses and set(statuses) == {"Full"}
    shoot(page, "orders")

    order_id = page.locator("tbody tr td:first-child a").first.inner_text()
    page.locator("tbody tr td:first-child a").first.click()
    page.wait_for_url(re.compile(r"/console/orders/"))
    assert page.inner_text("h1") == f"Order {order_id}"
    assert page.locator("table").nth(1).locator("tbody tr").count() >= 1  # the lines, explained
    shoot(page, "order")

    mark_not = "form[data-endpoint='/actions/mark-not-backorder'] button[type=submit]"
    page.click(mark_not)
    assert result_of(page).startswith("401:")
    page.fill("#token", "not-the-token")
    page.click("#use-token")
    page.click(mark_not)
    page.wait_for_function("() => document.getElementById('result').textContent.startsWith('403')")
    assert "not the API's token" in page.inner_text("#result")
    assert not actions.exists()

    page.fill("#token", TOKEN)
    page.click("#use-token")
    assert page.input_value("#token") == ""
    page.click(mark_not)
    page.wait_for_function("() => document.getElementById('result').textContent.startsWith('accepted')")
    text = page.inner_text("#result")
    event_id = re.search(r"event ([0-9a-f-]{36})", text).group(1)
    assert json.loads(actions.read_text().splitlines()[0])["id"] == event_id
    assert TOKEN not in page.content()
    shoot(page, "order-action")
    deadline = time.monotonic() + 30
    while True:
        page.reload()
        status = page.locator("table").first.locator("tbody tr td:nth-child(5)").inner_text()
        if status != "Full":
            break
        assert time.monotonic() < deadline, "the action was not applied"
        time.sleep(0.3)
    page.close()


def test_resubmit_a_corrected_dead_letter(server, browser):
    base, actions = server
    page = browser.new_page()
    page.goto(f"{base}/console/dead-letters")
    page.fill("input[name=reason]", "greater than 0")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"reason="))
    page.locator("tbody tr td:first-child a").first.click()
    page.wait_for_url(re.compile(r"/console/dead-letters/\d+"))
    original = page.input_value("textarea[name=event]")
    corrected = json.loads(original)
    corrected["data"]["line"]["qty"] = 3
    page.fill("textarea[name=event]", json.dumps(corrected))
    shoot(page, "dead-letter")
    page.fill("#token", TOKEN)
    page.click("#use-token")
    page.click("form[data-endpoint$='/resubmit'] button[type=submit]")
    page.wait_for_function("() => document.getElementById('result').textContent.startsWith('accepted')")
    event_id = re.search(r"event ([0-9a-f-]{36})", page.inner_text("#result")).group(1)
    published = [json.loads(line) for line in actions.read_text().splitlines()]
    assert published[-1] == {**corrected, "id": event_id} and event_id != corrected["id"]
    page.close()


def test_the_other_pages_render(server, browser):
    base, _ = server
    page = browser.new_page()
    page.goto(f"{base}/console/products")
    page.locator("tbody tr td:first-child a").first.click()
    page.wait_for_url(re.compile(r"/console/skus/"))
    assert page.locator("svg.chart").count() >= 2
    shoot(page, "sku")
    page.goto(f"{base}/console/operations")
    assert "Positions and lag" in page.content()
    shoot(page, "operations")
    page.goto(f"{base}/console/consistency")
    page.click("button[type=submit]")
    page.wait_for_selector("#consistent, p.problem, table")
    shoot(page, "consistency")
    page.close()
