"""Kafka connection settings from the environment."""

from __future__ import annotations

import pytest
from recalculator.kafka.settings import KafkaSettings, OutputTopics


def test_sasl_settings_must_be_complete(monkeypatch):
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    with pytest.raises(ValueError, match="KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD"):
        KafkaSettings()
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "s3cret")
    settings = KafkaSettings()
    assert "s3cret" not in repr(settings)
    options = settings.client_options()
    assert options["sasl_plain_password"] == "s3cret" and options["ssl_context"] is not None


def test_defaults_and_topic_names(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "10.1.2.3:9093")
    monkeypatch.setenv("BACKORDERS_TOPIC_BACKORDER_CHANGED", "bo.changed")
    assert KafkaSettings().client_options() == {
        "bootstrap_servers": "10.1.2.3:9093", "client_id": "backorders", "security_protocol": "PLAINTEXT",
    }
    topics = OutputTopics()
    assert topics.for_type("BackorderChanged") == "bo.changed"
    assert topics.for_type("ProductBackorderChanged") == "backorders.product-backorder-changed"
    with pytest.raises(ValueError):
        topics.for_type("OrderCreated")
