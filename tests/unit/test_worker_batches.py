"""How the Kafka worker orders the records of one fetch."""

from __future__ import annotations

from typing import NamedTuple

from aiokafka import TopicPartition
from recalculator.kafka.worker import in_log_time_order


class Message(NamedTuple):
    topic: str
    partition: int
    offset: int
    timestamp: int


def test_partitions_are_interleaved_by_time_each_keeping_its_offset_order():
    orders = [Message("orders", 0, 10, 100), Message("orders", 0, 11, 300), Message("orders", 0, 12, 250)]
    commands = [Message("commands", 0, 5, 200), Message("commands", 0, 6, 400)]
    stock = [Message("inventory", 1, 0, 100)]
    fetched = {TopicPartition("orders", 0): orders, TopicPartition("commands", 0): commands,
               TopicPartition("inventory", 1): stock}
    merged = in_log_time_order(fetched)
    assert [(m.topic, m.offset) for m in merged] == [
        ("inventory", 0), ("orders", 10), ("commands", 5), ("orders", 11), ("orders", 12), ("commands", 6),
    ]
    # A timestamp going backwards inside a partition never reorders that partition.
    assert [m.offset for m in merged if m.topic == "orders"] == [10, 11, 12]
