"""Channel configuration: validated at start, every problem in one readable line."""

from __future__ import annotations

from pathlib import Path

import pytest
from channel_support import CREDENTIALS
from channel_sync import config
from channel_sync.config import ConfigError

EXAMPLE = Path(__file__).resolve().parents[3] / "deploy" / "channels.example.toml"


def problems(raw: dict, env: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config.parse(raw, Path("var"), env or {}, origin="channels.toml")
    return caught.value.problems


def test_the_default_writes_the_three_channels_as_files(tmp_path):
    default = config.default_config(tmp_path)
    assert sorted(default.enabled()) == ["magento", "overstock", "wayfair"]
    assert {c.sink for c in default.channels.values()} == {"file"}
    assert default.feeds_dir == tmp_path / "feeds"


def test_the_example_file_is_valid_once_the_credentials_are_set(tmp_path):
    loaded = config.load(EXAMPLE, tmp_path, CREDENTIALS)
    assert loaded.channels["wayfair"].options().sku_map == {"CAT-HAMMOCK-0001": "WF-CH-0001"}
    assert loaded.feeds_dir == tmp_path / "feeds"
    with pytest.raises(ConfigError) as caught:
        config.load(EXAMPLE, tmp_path, {})
    assert caught.value.problems == [
        f"{EXAMPLE}: channels.magento.token_env: environment variable MAGENTO_TOKEN is not set",
        f"{EXAMPLE}: channels.overstock.api_key_env: environment variable OVERSTOCK_API_KEY is not set",
        f"{EXAMPLE}: channels.wayfair.client_id_env: environment variable WAYFAIR_CLIENT_ID is not set",
        f"{EXAMPLE}: channels.wayfair.client_secret_env: environment variable WAYFAIR_CLIENT_SECRET is not set",
    ]


def test_schema_problems_are_named_by_their_place():
    found = problems({"channels": {
        "wayfair": {"kind": "wayfair", "sink": "file", "bach_size": 3, "batch_size": 0},
        "ebay": {"kind": "ebay"},
        "magento": {"kind": "magento", "url": "ftp://shop"},
        "x": {},
    }})
    assert found == [
        "channels.toml: channels.wayfair.batch_size: Input should be greater than or equal to 1",
        "channels.toml: channels.wayfair.bach_size: unknown setting",
        "channels.toml: channels.ebay: kind must be one of 'wayfair', 'overstock', 'magento'",
        "channels.toml: channels.magento.url: must start with http:// or https://",
        "channels.toml: channels.x: kind is missing (wayfair, overstock or magento)",
    ]


def test_http_channels_need_their_endpoints_and_a_usable_name():
    found = problems({"channels": {
        "Way Fair": {"kind": "wayfair", "url": "https://api"},
        "mage": {"kind": "magento"},
    }}, env=CREDENTIALS)
    assert found == [
        "channels.toml: channels.Way Fair: a channel name is lower-case letters, digits, '-' or '_'",
        "channels.toml: channels.Way Fair.token_url: needed when sink is 'http' (OAuth client credentials)",
        "channels.toml: channels.Way Fair.supplier_id: needed when sink is 'http'",
        "channels.toml: channels.mage.url: needed when sink is 'http'",
    ]
    assert problems({"channels": {"w": {"kind": "wayfair", "enabled": False}}}) == [
        "channels.toml: channels: no channel is enabled"]


def test_file_channels_need_no_endpoint_and_no_credentials():
    loaded = config.parse({"channels": {"m": {"kind": "magento", "sink": "file"}}}, Path("var"), {})
    assert loaded.channels["m"].sink == "file"


def test_bad_toml_and_missing_file_are_one_line_each(tmp_path):
    broken = tmp_path / "c.toml"
    broken.write_text("[channels\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(broken, tmp_path)
    with pytest.raises(ConfigError, match="cannot read it"):
        config.load(tmp_path / "none.toml", tmp_path)


def test_the_fingerprint_follows_what_shapes_the_rows_and_the_destination_where_they_go():
    base = {"kind": "wayfair", "sink": "file", "supplier_id": 1}
    channel = lambda **kw: config.parse(  # noqa: E731
        {"channels": {"w": {**base, **kw}}}, Path("var"), CREDENTIALS).channels["w"]
    fingerprint = lambda **kw: channel(**kw).fingerprint()  # noqa: E731
    assert fingerprint() == fingerprint(batch_size=7, url="https://elsewhere", retry={"max_attempts": 2})
    assert channel().destination() == channel(url="https://elsewhere").destination() == "file"
    assert channel(sink="http", url="https://a", token_url="https://t").destination() == "http https://a"
    assert fingerprint() != fingerprint(sku_map={"A": "B"})
    assert fingerprint() != fingerprint(listed=["CAT-*"])
    assert fingerprint() != fingerprint(supplier_id=2)


def test_the_token_url_is_http_and_one_channel_sku_is_one_of_ours():
    found = problems({"channels": {
        "wayfair": {"kind": "wayfair", "sink": "file", "token_url": "file:///etc/token"},
        "overstock": {"kind": "overstock", "sink": "file", "sku_map": {"A-1": "OS-1", "B-1": "OS-1"}},
        "magento": {"kind": "magento", "sink": "file", "listed": ["A-1", "B-1"], "sku_map": {"A-1": "B-1"}},
    }})
    assert found == [
        "channels.toml: channels.wayfair.token_url: must start with http:// or https://",
        "channels.toml: channels.overstock: A-1, B-1 are all mapped to 'OS-1'",
        "channels.toml: channels.magento: A-1 is mapped to 'B-1', which is listed as a SKU of its own",
    ]
    # Swapping two listed SKUs' names is fine: each channel SKU is still one of ours.
    config.parse({"channels": {"magento": {"kind": "magento", "sink": "file", "listed": ["A-1", "B-1"],
                                           "sku_map": {"A-1": "B-1", "B-1": "A-1"}}}}, Path("var"), {})


def test_the_file_is_named_by_the_argument_or_either_variable(tmp_path):
    good = tmp_path / "channels.toml"
    good.write_text('[channels.shop]\nkind = "magento"\nsink = "file"\n')
    for env in ({"CHANNEL_SYNC_CONFIG": str(good)}, {"BACKORDERS_CHANNELS_CONFIG": str(good)},
                {"CHANNEL_SYNC_CONFIG": str(good), "BACKORDERS_CHANNELS_CONFIG": str(good)}):
        assert list(config.load_configured(None, tmp_path, env).channels) == ["shop"]
    assert list(config.load_configured(good, tmp_path, {}).channels) == ["shop"]
    assert sorted(config.load_configured(None, tmp_path, {}).channels) == ["magento", "overstock", "wayfair"]
    with pytest.raises(ConfigError) as caught:
        config.load_configured(None, tmp_path, {"CHANNEL_SYNC_CONFIG": str(good),
                                                "BACKORDERS_CHANNELS_CONFIG": str(tmp_path / "other.toml")})
    assert "name different files" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        config.load_configured(tmp_path / "missing.toml", tmp_path, {})
    assert caught.value.problems == [f"{tmp_path / 'missing.toml'}: cannot read it (No such file or directory)"]
