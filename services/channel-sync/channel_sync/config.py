"""Per-channel configuration: a TOML file (`deploy/channels.example.toml`), validated when a
runtime starts, with every problem said in one readable line.

Credentials are never in the file: each channel names the environment variables that hold
them, and those must be set when the channel sends over HTTP. Without a file the built-in
default lists Wayfair, Overstock and Magento with the file sink (payloads written under the
feeds folder), so the embedded run needs no endpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from .domain.feeds import MAGENTO, OVERSTOCK, WAYFAIR, ChannelOptions

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}\Z")


class ConfigError(ValueError):
    """The configuration cannot be used; `problems` are readable lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrySettings(_Strict):
    """429 and 5xx answers (and timeouts, refused connections) are tried again."""

    max_attempts: int = Field(5, ge=1, le=20)
    backoff_seconds: float = Field(1.0, ge=0)  # doubled after each attempt
    max_backoff_seconds: float = Field(60.0, ge=0)
    max_retry_after_seconds: float = Field(300.0, ge=0)  # a longer Retry-After is capped


class _Channel(_Strict):
    enabled: bool = True
    sink: Literal["http", "file"] = "http"
    url: str | None = None
    batch_size: int = Field(100, ge=1, le=5000)
    timeout_seconds: float = Field(30.0, gt=0)
    listed: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    sku_map: dict[str, str] = Field(default_factory=dict)
    discontinued: list[str] = Field(default_factory=list)
    retry: RetrySettings = RetrySettings()

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _one_channel_sku_each(self):
        """Two of our SKUs sent as one channel SKU would overwrite each other's row."""
        problems = []
        by_target: dict[str, list[str]] = {}
        for ours, theirs in sorted(self.sku_map.items()):
            by_target.setdefault(theirs, []).append(ours)
        for theirs, ours in sorted(by_target.items()):
            if len(ours) > 1:
                problems.append(f"{', '.join(ours)} are all mapped to {theirs!r}")
        literal = {entry for entry in self.listed if not any(c in entry for c in "*?[")}
        for ours, theirs in sorted(self.sku_map.items()):
            if theirs != ours and theirs in literal and theirs not in self.sku_map:
                problems.append(f"{ours} is mapped to {theirs!r}, which is listed as a SKU of its own")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def options(self) -> ChannelOptions:
        return ChannelOptions(
            kind=self.kind, listed=tuple(self.listed), sku_map=dict(self.sku_map),
            discontinued=frozenset(self.discontinued),
        )

    def destination(self) -> str:
        """Where rows go. Another destination has accepted nothing yet: when it changes, what
        the previous one accepted is forgotten and every row is sent."""
        return "file" if self.sink == "file" else f"http {self.url}"

    def fingerprint(self) -> str:
        """Changes when the rows this channel gets may change: every SKU is looked at again
        (and only the rows that differ are sent)."""
        options = self.options()
        shape = {name: getattr(options, name) for name in options.__dataclass_fields__}
        shape["listed"], shape["sku_map"] = list(shape["listed"]), dict(sorted(shape["sku_map"].items()))
        shape["discontinued"] = sorted(shape["discontinued"])
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]

    def required_env(self) -> dict[str, str]:
        """Setting name → environment variable it names, needed for HTTP."""
        return {}

    def http_problems(self) -> list[str]:
        return [] if self.url else ["url: needed when sink is 'http'"]


class WayfairChannel(_Channel):
    kind: Literal["wayfair"]
    token_url: str | None = None
    client_id_env: str = "WAYFAIR_CLIENT_ID"
    client_secret_env: str = "WAYFAIR_CLIENT_SECRET"
    audience: str = "https://api.wayfair.io/"
    supplier_id: int | None = Field(None, gt=0)
    feed_kind: Literal["DIFFERENTIAL", "TRUE_UP"] = "DIFFERENTIAL"

    @field_validator("token_url")
    @classmethod
    def _http_token_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    def options(self) -> ChannelOptions:
        base = super().options()
        return ChannelOptions(**{**base.__dict__, "supplier_id": self.supplier_id})

    def required_env(self) -> dict[str, str]:
        return {"client_id_env": self.client_id_env, "client_secret_env": self.client_secret_env}

    def http_problems(self) -> list[str]:
        problems = super().http_problems()
        if not self.token_url:
            problems.append("token_url: needed when sink is 'http' (OAuth client credentials)")
        if self.supplier_id is None:
            problems.append("supplier_id: needed when sink is 'http'")
        return problems


class OverstockChannel(_Channel):
    kind: Literal["overstock"]
    api_key_env: str = "OVERSTOCK_API_KEY"
    batch_size: int = Field(500, ge=1, le=5000)

    def required_env(self) -> dict[str, str]:
        return {"api_key_env": self.api_key_env}


class MagentoChannel(_Channel):
    kind: Literal["magento"]
    token_env: str = "MAGENTO_TOKEN"
    stock_item_id: int = Field(1, ge=1)
    backorders_value: Literal[1, 2] = 1  # 1: allow qty below 0; 2: and notify the customer
    send_backorder_tags: bool | None = None  # None: the client setting decides

    def options(self) -> ChannelOptions:
        base = super().options()
        return ChannelOptions(**{
            **base.__dict__, "stock_item_id": self.stock_item_id,
            "backorders_value": self.backorders_value, "send_backorder_tags": self.send_backorder_tags,
        })

    def required_env(self) -> dict[str, str]:
        return {"token_env": self.token_env}


Channel = Annotated[Union[WayfairChannel, OverstockChannel, MagentoChannel], Field(discriminator="kind")]


class RetentionSettings(_Strict):
    """How long what grows is kept (`[retention]`); see docs/channel-sync.md."""

    # Purchase orders fully received and containers with nothing left on the way, and
    # receipts, once their last update is older than this, in business time.
    closed_supply_days: float = Field(30.0, gt=0)
    # Failures resolved by a later accepted row, or superseded by a later failure of the
    # same SKU, once recorded longer ago than this (wall clock).
    failure_days: float = Field(30.0, gt=0)
    dead_letter_days: float = Field(30.0, gt=0)  # dead letters (wall clock)
    feed_file_days: float = Field(30.0, gt=0)  # the files file sinks wrote (wall clock)


class ChannelsConfig(_Strict):
    feeds_dir: Path | None = None  # where file sinks write (default: <data dir>/feeds)
    channels: dict[str, Channel] = Field(default_factory=dict)
    retention: RetentionSettings = RetentionSettings()

    def enabled(self) -> dict[str, Channel]:
        return {name: channel for name, channel in sorted(self.channels.items()) if channel.enabled}

    def secret(self, name: str, setting: str, env: Mapping[str, str] | None = None) -> str:
        env = os.environ if env is None else env
        channel = self.channels[name]
        return env[channel.required_env()[setting]]


def default_config(data_dir: Path) -> ChannelsConfig:
    """The three channels of the seed, each writing its payloads as files."""
    return ChannelsConfig(
        feeds_dir=Path(data_dir) / "feeds",
        channels={
            WAYFAIR: WayfairChannel(kind=WAYFAIR, sink="file"),
            OVERSTOCK: OverstockChannel(kind=OVERSTOCK, sink="file"),
            MAGENTO: MagentoChannel(kind=MAGENTO, sink="file"),
        },
    )


class ConfigLocation(BaseSettings):
    """Where the configuration file is: two names (the worker's own and the project-wide
    one). Not aliases of one setting: both set to different files is refused, since which
    one is meant cannot be told."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore")

    channel_sync_config: Path | None = Field(None, validation_alias="CHANNEL_SYNC_CONFIG")
    backorders_channels_config: Path | None = Field(None, validation_alias="BACKORDERS_CHANNELS_CONFIG")

    @model_validator(mode="after")
    def _one_file(self) -> ConfigLocation:
        named = {self.channel_sync_config, self.backorders_channels_config} - {None}
        if len(named) > 1:
            raise ValueError(
                "CHANNEL_SYNC_CONFIG and BACKORDERS_CHANNELS_CONFIG name different files "
                f"({str(self.channel_sync_config)!r}, {str(self.backorders_channels_config)!r}): set one"
            )
        return self

    @property
    def path(self) -> Path | None:
        return self.channel_sync_config or self.backorders_channels_config


def configured_path(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    """The configuration file to read: `path` when given, else `$CHANNEL_SYNC_CONFIG`, else
    `$BACKORDERS_CHANNELS_CONFIG` (`env` instead of the environment when given); None: the
    built-in default."""
    if path:
        return Path(path)
    try:
        if env is None:
            return ConfigLocation().path
        return ConfigLocation.model_validate({k: v for k, v in env.items() if v}).path
    except ValidationError as error:
        raise ConfigError([problem["msg"].removeprefix("Value error, ") for problem in error.errors()]) from None


def load_configured(
    path: str | Path | None = None, data_dir: Path | None = None, env: Mapping[str, str] | None = None
) -> ChannelsConfig:
    """The channel configuration a runtime or command uses, loaded and checked: the file
    `configured_path` names, or the built-in default (file sinks under `<data_dir>/feeds`;
    `data_dir` defaults to the project's data folder). Raises ConfigError, whose `problems`
    are readable lines (`str(error)` joins them)."""
    if data_dir is None:
        from backorders_platform.settings import StorageSettings

        data_dir = StorageSettings().data_dir
    chosen = configured_path(path, env)
    if chosen is None:
        return default_config(Path(data_dir))
    return load(chosen, Path(data_dir), env)


def load(path: Path, data_dir: Path, env: Mapping[str, str] | None = None) -> ChannelsConfig:
    """Read and check a configuration file; raises ConfigError listing every problem."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError([f"{path}: cannot read it ({error.strerror})"]) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"{path}: not valid TOML ({error})"]) from None
    return parse(raw, data_dir, env, origin=str(path))


def parse(raw: dict, data_dir: Path, env: Mapping[str, str] | None = None, *, origin: str = "config") -> ChannelsConfig:
    try:
        config = ChannelsConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError([f"{origin}: {line}" for line in _readable(error)]) from None
    problems = check(config, env)
    if problems:
        raise ConfigError([f"{origin}: {line}" for line in problems])
    if config.feeds_dir is None:
        config = config.model_copy(update={"feeds_dir": Path(data_dir) / "feeds"})
    return config


def check(config: ChannelsConfig, env: Mapping[str, str] | None = None) -> list[str]:
    """What makes a valid file unusable here: bad names, missing endpoints or credentials."""
    env = os.environ if env is None else env
    problems = []
    if not config.enabled():
        problems.append("channels: no channel is enabled")
    for name, channel in sorted(config.channels.items()):
        where = f"channels.{name}"
        if not _NAME.match(name):
            problems.append(f"{where}: a channel name is lower-case letters, digits, '-' or '_'")
        if not channel.enabled or channel.sink != "http":
            continue
        problems += [f"{where}.{line}" for line in channel.http_problems()]
        for setting, variable in channel.required_env().items():
            if not env.get(variable):
                problems.append(f"{where}.{setting}: environment variable {variable} is not set")
    return problems


def _readable(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors(include_url=False):
        loc = list(item["loc"])
        # A discriminated union puts the tag ("wayfair") into the path: leave it out.
        if len(loc) >= 3 and loc[0] == "channels" and loc[2] in (WAYFAIR, OVERSTOCK, MAGENTO):
            del loc[2]
        path = ".".join(str(part) for part in loc) or "(file)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown setting"
        elif item["type"] == "union_tag_invalid":
            message = f"kind must be one of {WAYFAIR!r}, {OVERSTOCK!r}, {MAGENTO!r}"
        elif item["type"] == "union_tag_not_found":
            message = "kind is missing (wayfair, overstock or magento)"
        lines.append(f"{path}: {message}")
    return lines
