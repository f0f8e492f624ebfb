"""Listing and deleting topics on the real broker (the session's clean-up relies on it)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from backorders_platform.kafka_settings import KafkaSettings
from integration.conftest import kafka_bootstrap
from recalculator.kafka.topic_admin import delete_topics, topic_names

pytestmark = pytest.mark.integration


async def test_topics_created_are_listed_and_deleted_and_internal_ones_are_kept():
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap())
    names = {f"admin-test-{uuid.uuid4().hex[:8]}-{n}" for n in range(3)}
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1) for name in names])
    finally:
        await admin.close()
    listed = await topic_names(kafka)
    assert names <= listed

    internal = {name for name in listed if name.startswith("__")}
    asked = await delete_topics(kafka, names | internal)
    assert asked == len(names)  # internal topics are never asked for

    deadline = asyncio.get_running_loop().time() + 30
    while names & (remaining := await topic_names(kafka)):
        assert asyncio.get_running_loop().time() < deadline, f"still listed: {names & remaining}"
        await asyncio.sleep(0.2)
    assert internal <= remaining
