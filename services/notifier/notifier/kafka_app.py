"""The module faust is pointed at: `faust -A notifier.kafka_app worker` (what `backorders
worker notifier` runs). faust finds the app as an attribute of the module it imports, so
this module, and only this one, builds the worker from the environment when imported; the
worker itself is `kafka_worker.NotifierKafkaWorker`, which reads nothing at import."""

from __future__ import annotations

from backorder_events.topics import InputTopics, OutputTopics
from backorders_platform.kafka_settings import KafkaSettings

from .kafka_worker import NotifierKafkaWorker, NotifierWorkerConfig

worker = NotifierKafkaWorker(NotifierWorkerConfig(), KafkaSettings(), InputTopics(), OutputTopics())
app = worker.app
