"""What the whole session shares: the topics it leaves behind are deleted at its end.

The integration and end-to-end tests create fresh topics for every test (and the relays and
faust create more on first use). Left on the long-lived local broker, they pile up run after
run and slow the broker down (see recalculator.kafka.topic_admin); so every topic that
appeared on it during the session goes when the session ends, or, when sessions overlap,
when the last of them ends (tests/session_topics.py).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import warnings
from pathlib import Path

import pytest
from backorders_platform.kafka_settings import KafkaSettings
from recalculator.kafka.topic_admin import delete_topics, topic_names

from session_topics import SessionRegistry


@pytest.fixture(scope="session", autouse=True)
def delete_session_topics():
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not servers:  # unit tests alone: no broker
        yield
        return
    kafka = KafkaSettings(bootstrap_servers=servers)
    folder = Path(tempfile.gettempdir()) / f"backorders-test-sessions-{servers.replace(':', '_').replace(',', '+')}"
    registry = SessionRegistry(folder)
    try:
        registry.start(lambda: asyncio.run(topic_names(kafka)))
    except Exception as error:  # noqa: BLE001 - the tests that need the broker say why
        warnings.warn(f"topics not cleaned up: the broker did not answer ({error!r})", stacklevel=1)
        yield
        return
    yield
    try:
        baseline = registry.end()
        if baseline is not None:
            asyncio.run(delete_topics(kafka, asyncio.run(topic_names(kafka)) - baseline))
    except Exception as error:  # noqa: BLE001 - a broker the tests stopped; nothing to fail
        warnings.warn(f"the session's topics were not deleted: {error!r}", stacklevel=1)
