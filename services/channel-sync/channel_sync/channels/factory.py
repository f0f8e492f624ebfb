"""One sink per enabled channel, from the configuration (credentials read from the
environment variables it names), sharing one HTTP session."""

from __future__ import annotations

import os
from collections.abc import Mapping

import aiohttp

from ..config import ChannelsConfig, MagentoChannel, OverstockChannel, WayfairChannel
from .base import Sink
from .files import FileSink
from .magento import MagentoSink
from .overstock import OverstockSink
from .wayfair import TokenProvider, WayfairSink


class Sinks:
    def __init__(self, config: ChannelsConfig, env: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.env = os.environ if env is None else env
        self.session: aiohttp.ClientSession | None = None
        self.by_channel: dict[str, Sink] = {}

    async def start(self) -> Sinks:
        config, env = self.config, self.env
        for name, channel in config.enabled().items():
            if channel.sink == "file":
                feed_kind = getattr(channel, "feed_kind", "DIFFERENTIAL")
                self.by_channel[name] = FileSink(name, channel.kind, config.feeds_dir / name, feed_kind)
                continue
            if self.session is None:
                self.session = aiohttp.ClientSession()
            secret = {setting: env[variable] for setting, variable in channel.required_env().items()}
            if isinstance(channel, WayfairChannel):
                tokens = TokenProvider(self.session, channel, secret["client_id_env"], secret["client_secret_env"])
                self.by_channel[name] = WayfairSink(name, channel, self.session, tokens)
            elif isinstance(channel, OverstockChannel):
                self.by_channel[name] = OverstockSink(name, channel, self.session, secret["api_key_env"])
            elif isinstance(channel, MagentoChannel):
                self.by_channel[name] = MagentoSink(name, channel, self.session, secret["token_env"])
        return self

    async def close(self) -> None:
        for sink in self.by_channel.values():
            await sink.close()
        if self.session is not None:
            await self.session.close()
            self.session = None

    def __getitem__(self, name: str) -> Sink:
        return self.by_channel[name]
