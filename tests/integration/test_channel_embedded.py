"""Channel-sync's embedded runtime after the recalculator's, as `make run` uses them: a
generated day into SQLite, then `run_embedded` over the same inputs and outbox. The feeds
hold exactly the rows a from-scratch projection gives, a second run sends nothing, and the
same run against HTTP stand-ins sends the same rows."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from backorders_app.downstream import sync_channels as run_embedded
from backorders_platform.database import sqlite_url
from backorders_workload import WorkloadShape, generate_day
from channel_support import CREDENTIALS, StandIn, http_config
from channel_sync.config import default_config
from channel_sync.domain import feeds
from channel_sync.domain.projection import Projection
from channel_sync.service import parse
from recalculator.publishing import to_json
from recalculator.runtime.embedded import EmbeddedRuntime


async def recalculated_day(tmp_path: Path, seed: int = 5, orders: int = 600, skus: int = 50):
    events = generate_day(seed, WorkloadShape(orders=orders, skus=skus))
    inputs = [(n, e["__raw__"] if "__raw__" in e else to_json(e)) for n, e in enumerate(events, 1)]
    url = sqlite_url(tmp_path / "demo.sqlite")
    async with EmbeddedRuntime(url) as runtime:
        await runtime.consume("day", inputs)
        outbox = await runtime.repository.outbox_rows(0, 10_000_000)
    return url, inputs, outbox


def expected_rows(inputs, outbox, channel: str, data_dir: Path) -> dict[str, dict]:
    """From scratch: every input and every published position into a fresh projection."""
    projection = Projection()
    for _, raw in inputs:
        if (event := parse(raw)) is not None:
            projection.apply(event)
    for row in outbox:
        if row.event_type == "SkuPositionChanged":
            projection.apply(parse(row.payload))
    options = default_config(data_dir).channels[channel].options()
    return {sku: r for sku, r in feeds.rows(projection, options, projection.skus()).items() if r is not None}


def last_rows_in_files(folder: Path, kind: str) -> dict[str, dict]:
    """The latest row per SKU over every file the file sink wrote, in batch order."""
    latest: dict[str, dict] = {}
    for path in sorted(folder.iterdir()):
        if kind == "wayfair":
            for item in json.loads(path.read_text())["variables"]["inventory"]:
                latest[item["supplierPartNumber"]] = item
        elif kind == "overstock":
            for line in csv.DictReader(io.StringIO(path.read_text())):
                latest[line["SKU"]] = line
        else:
            for line in path.read_text().splitlines():
                request = json.loads(line)
                latest[request["path"].split("/")[-3]] = request["body"]
    return latest


async def test_the_files_hold_the_rows_of_the_projection_and_a_second_run_sends_nothing(tmp_path):
    url, inputs, outbox = await recalculated_day(tmp_path)
    positions = [row for row in outbox if row.event_type == "SkuPositionChanged"]
    assert len(positions) > 100

    summary = await run_embedded(url, inputs, "day", data_dir=tmp_path)
    rows = dict(summary.rows)
    assert summary.title == "Channel feeds"
    feeds_dir = tmp_path / "feeds"
    for channel in ("wayfair", "overstock", "magento"):
        expected = expected_rows(inputs, outbox, channel, tmp_path)
        assert len(expected) == 50  # every SKU of the day has a position
        sent, accepted = (int(x) for x in rows[f"{channel}: rows sent / accepted"].split(" / "))
        assert sent == accepted == len(expected)
        written = last_rows_in_files(feeds_dir / channel, channel)
        if channel == "wayfair":
            assert written == expected
        elif channel == "overstock":
            assert written == {
                sku: {"SKU": r["sku"], "Quantity": str(r["quantity"]), "QuantityOnOrder": str(r["quantityOnOrder"]),
                      "ETA": r["eta"] or ""}
                for sku, r in expected.items()
            }
        else:
            assert written == {sku: {"stockItem": r["stockItem"]} for sku, r in expected.items()}
    on_order = [r for r in expected_rows(inputs, outbox, "wayfair", tmp_path).values() if r["quantityOnOrder"]]
    assert on_order and any(r["itemNextAvailabilityDate"] for r in on_order)

    files = sorted(p.name for p in feeds_dir.rglob("*") if p.is_file())
    again = await run_embedded(url, inputs, "day", data_dir=tmp_path)
    assert all(value == "0 / 0" for key, value in again.rows if key.endswith("rows sent / accepted"))
    assert sorted(p.name for p in feeds_dir.rglob("*") if p.is_file()) == files


async def test_the_embedded_run_against_http_channels(tmp_path, monkeypatch):
    url, inputs, outbox = await recalculated_day(tmp_path, seed=8, orders=300, skus=30)
    server = await StandIn().start()
    try:
        config = tmp_path / "channels.toml"
        config.write_text(_toml(http_config(server.base)))
        for name, value in CREDENTIALS.items():
            monkeypatch.setenv(name, value)
        summary = await run_embedded(url, inputs, "day", data_dir=tmp_path, config_path=config)
        assert dict(summary.rows)["wayfair: rows sent / accepted"] == "30 / 30"
        assert len(server.seen("magento")) == 30
        assert len(server.seen("wayfair")) == 15  # batch_size 2
        expected = expected_rows(inputs, outbox, "wayfair", tmp_path)
        # The same rows as the file sink's, with the configured supplier id.
        assert last_sent_wayfair(server) == {sku: {**row, "supplierId": 4242} for sku, row in expected.items()}
        count = len(server.requests)
        await run_embedded(url, inputs, "day", data_dir=tmp_path, config_path=config)
        assert len(server.requests) == count
    finally:
        await server.stop()


def last_sent_wayfair(server: StandIn) -> dict[str, dict]:
    latest = {}
    for call in server.seen("wayfair"):
        for item in call.json()["variables"]["inventory"]:
            latest[item["supplierPartNumber"]] = item
    return latest


def _toml(value: dict, prefix: str = "") -> str:
    """Enough TOML for the test configuration (tables of scalars, lists and tables)."""
    lines, tables = [], []
    for key, item in value.items():
        if isinstance(item, dict):
            tables.append((key, item))
        else:
            lines.append(f"{key} = {json.dumps(item)}")
    text = "\n".join(lines) + "\n"
    for key, item in tables:
        name = f"{prefix}.{key}" if prefix else key
        text += f"\n[{name}]\n" + _toml(item, name)
    return text


async def test_the_embedded_run_takes_a_configuration_already_loaded(tmp_path):
    url, inputs, _ = await recalculated_day(tmp_path, seed=9, orders=200, skus=20)
    path = tmp_path / "channels.toml"
    path.write_text(f'feeds_dir = "{tmp_path / "elsewhere"}"\n[channels.shop]\nkind = "magento"\nsink = "file"\n')
    from channel_sync.config import load_configured

    config = load_configured(None, tmp_path, {"BACKORDERS_CHANNELS_CONFIG": str(path)})
    summary = await run_embedded(url, inputs, "day", data_dir=tmp_path, config=config)
    assert dict(summary.rows)["shop: rows sent / accepted"] == "20 / 20"
    assert [p.parent.name for p in (tmp_path / "elsewhere").rglob("*.jsonl")] == ["shop"]
