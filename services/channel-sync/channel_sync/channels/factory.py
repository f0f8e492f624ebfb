"""One sink per enabled channel, from the configuration (credentials read from the
environment variables it names), sharing one HTTP session. Every answer a sink gives back
is redacted of the credentials (those read, and the access tokens fetched since) and of
anything shaped like one before anyone stores or logs it: a token endpoint may echo the
client secret it was sent, an API the token of the request it refuses."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

import aiohttp
from backorders_platform.redaction import Redactor

from ..config import ChannelsConfig, MagentoChannel, OverstockChannel, WayfairChannel
from .base import Batch, Outcome, Sink
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
        self.redactor = Redactor()

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
            self.redactor.add(*(value for setting, value in secret.items() if setting != "client_id_env"))
            if isinstance(channel, WayfairChannel):
                tokens = TokenProvider(self.session, channel, secret["client_id_env"], secret["client_secret_env"],
                                       on_token=self.redactor.add)
                sink: Sink = WayfairSink(name, channel, self.session, tokens)
            elif isinstance(channel, OverstockChannel):
                sink = OverstockSink(name, channel, self.session, secret["api_key_env"])
            elif isinstance(channel, MagentoChannel):
                sink = MagentoSink(name, channel, self.session, secret["token_env"])
            else:  # pragma: no cover - the configuration knows these three kinds only
                raise ValueError(f"no HTTP sink for channel kind {channel.kind!r}")
            self.by_channel[name] = Redacting(sink, self.redactor)
        return self

    async def close(self) -> None:
        for sink in self.by_channel.values():
            await sink.close()
        if self.session is not None:
            await self.session.close()
            self.session = None

    def __getitem__(self, name: str) -> Sink:
        return self.by_channel[name]


class Redacting:
    """A sink whose answers come back without credentials."""

    def __init__(self, sink: Sink, redactor: Redactor) -> None:
        self.sink = sink
        self.redactor = redactor

    async def send(self, batch: Batch) -> list[Outcome]:
        outcomes = await self.sink.send(batch)
        return [dataclasses.replace(o, body=self.redactor(o.body)) if o.body else o for o in outcomes]

    async def close(self) -> None:
        await self.sink.close()
