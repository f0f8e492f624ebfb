"""`backorders channels preview|push|failures` as an operator runs them, after `backorders
run` has fed the embedded channel-sync (file sink), then against HTTP stand-ins."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from channel_support import CREDENTIALS, http_config
from integration.test_channel_embedded import _toml
from test_channel_kafka_worker import ThreadedStandIn

BACKORDERS = [sys.executable, "-m", "backorders_app.main"]


def backorders(*args, env=None):
    return subprocess.run([*BACKORDERS, *args], capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=300)


def test_run_then_preview_push_and_failures(tmp_path):
    env = {"BACKORDERS_DATA_DIR": str(tmp_path)}
    made = backorders("run", "--orders", "300", "--skus", "30", "--no-progress", env=env)
    assert made.returncode == 0, made.stderr
    assert "Channel feeds" in made.stdout
    for channel in ("wayfair", "overstock", "magento"):
        assert f"{channel}: rows sent / accepted" in made.stdout
    assert made.stdout.count("30 / 30") == 3
    db = str(tmp_path / "demo.sqlite")

    # Everything was accepted by the file sink: nothing to preview, nothing to push.
    preview = backorders("channels", "preview", "wayfair", "--db", db, "--full", "--json", env=env)
    assert (preview.returncode, preview.stdout) == (0, ""), preview.stderr
    pushed = backorders("channels", "push", "--db", db, env=env)
    assert pushed.returncode == 0, pushed.stderr

    with ThreadedStandIn() as server:
        server.refuse_sku("BATH-TOWEL-0013", 400, '{"message": "Requested product doesn\'t exist"}')
        config = tmp_path / "channels.toml"
        config.write_text(_toml(http_config(server.base)))
        live = {**env, **CREDENTIALS, "BACKORDERS_CHANNELS_CONFIG": str(config)}
        # A new destination: every row would go out.
        preview = backorders("channels", "preview", "magento", "--db", db, "--json", env=live)
        rows = [json.loads(line) for line in preview.stdout.splitlines()]
        assert len(rows) == 30 and {"sku", "row"} <= set(rows[0])
        assert server.requests == []  # a preview sends nothing

        pushed = backorders("channels", "push", "--db", db, env=live)
        assert pushed.returncode == 1, pushed.stdout + pushed.stderr
        assert "1 rows failed" in pushed.stderr
        assert len(server.seen("magento")) == 30 and len(server.seen("overstock")) == 1
        assert len(server.seen("wayfair")) == 15  # batch_size 2

        failures = backorders("channels", "failures", "--db", db, "--json", env=live)
        [failure] = [json.loads(line) for line in failures.stdout.splitlines()]
        assert (failure["channel"], failure["sku"], failure["kind"], failure["status"]) == (
            "magento", "BATH-TOWEL-0013", "rejected", 400)
        assert "doesn't exist" in failure["body"] and failure["row"]["stockItem"]["qty"] >= 0
        table = backorders("channels", "failures", "--db", db, env=live)
        assert "BATH-TOWEL-0013" in table.stdout and "rejected" in table.stdout

        # Nothing changed since: the next push sends nothing, the refused row included.
        count = len(server.requests)
        again = backorders("channels", "push", "--db", db, env=live)
        assert again.returncode == 0, again.stderr
        assert len(server.requests) == count


def test_a_bad_configuration_is_refused_with_readable_lines(tmp_path):
    config = tmp_path / "channels.toml"
    config.write_text('[channels.wayfair]\nkind = "wayfair"\nurl = "https://api.example"\nbatchsize = 5\n')
    result = backorders("channels", "push", "--config", str(config), "--db", str(tmp_path / "x.sqlite"),
                        env={"BACKORDERS_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "invalid channel configuration" in result.stderr
    assert "channels.wayfair.batchsize: unknown setting" in result.stderr
    assert "Traceback" not in result.stderr
    missing = tmp_path / "ok.toml"
    missing.write_text('[channels.shop]\nkind = "magento"\nurl = "https://shop.example"\n')
    result = backorders("channels", "push", "--config", str(missing), "--db", str(tmp_path / "x.sqlite"),
                        env={"MAGENTO_TOKEN": ""})
    assert result.returncode == 2
    assert "channels.shop.token_env: environment variable MAGENTO_TOKEN is not set" in result.stderr
    unknown = backorders("channels", "preview", "ebay", "--db", str(tmp_path / "x.sqlite"),
                         env={"BACKORDERS_DATA_DIR": str(tmp_path)})
    assert unknown.returncode == 2 and "no enabled channel 'ebay'" in unknown.stderr
