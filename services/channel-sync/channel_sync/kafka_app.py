"""The module faust is pointed at: `faust -A channel_sync.kafka_app worker` (what
`backorders worker channel-sync` runs). faust finds the app as an attribute of the module it
imports, so this module, and only this one, builds the worker from the environment (and
loads the channel configuration) when imported; the worker itself is
`kafka_worker.ChannelSyncKafkaWorker`, which reads nothing at import."""

from __future__ import annotations

from backorder_events.topics import InputTopics, OutputTopics
from backorders_platform import logs
from backorders_platform.kafka_settings import KafkaSettings
from backorders_platform.settings import StorageSettings

from .kafka_worker import ChannelSyncKafkaWorker, WorkerConfig

logs.configure()
worker = ChannelSyncKafkaWorker(WorkerConfig(), KafkaSettings(), InputTopics(), OutputTopics(), StorageSettings())
app = worker.app
