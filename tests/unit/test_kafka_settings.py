"""Kafka connection settings from the environment."""

from __future__ import annotations

import pytest
from backorder_events.topics import OutputTopics
from backorders_platform.kafka_settings import KafkaSettings


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


def test_each_event_goes_to_its_topic_with_its_key():
    from backorder_events.topics import InputTopics

    topics = InputTopics()

    def route(kind, data):
        return topics.route({"type": kind, "data": data})

    assert route("OrderCreated", {"order_id": 7}) == ("backorders.orders", "7")
    assert route("InventoryAdjusted", {"sku": "A", "warehouse_id": "W"}) == ("backorders.inventory", "A")
    assert route("POReceived", {"po_id": "P", "lines": [{"sku": "A"}, {"sku": "A"}]}) == ("backorders.inventory", "A")
    assert route("POReceived", {"po_id": "P", "lines": [{"sku": "A"}, {"sku": "B"}]}) == ("backorders.inventory", "P")
    assert route("SettingsChanged", {"settings": {}}) == ("backorders.reference", "settings")
    # A manual action on one order follows that order's events; on several, or a
    # recalculation, goes to the commands topic, under one key that keeps them in order.
    assert route("MarkBackorder", {"order_ids": ["o1"]}) == ("backorders.orders", "o1")
    assert route("ReallocateBackorder", {"order_id": "o2", "lines": []}) == ("backorders.orders", "o2")
    assert route("MarkNotBackorder", {"order_ids": ["o1", "o2"]}) == ("backorders.commands", "commands")
    assert route("RecalculateBackorders", {"order_ids": ["o1"]}) == ("backorders.commands", "commands")
    assert topics.route("not an event") == ("backorders.commands", "commands")


def test_faust_apps_take_the_same_connection_settings():
    import faust
    from backorders_platform.faust_support import make_app
    from pydantic import SecretStr

    plain = make_app("t-plain", KafkaSettings(bootstrap_servers="10.0.0.1:9092,10.0.0.2:9092"))
    assert [str(url) for url in plain.conf.broker] == ["kafka://10.0.0.1:9092", "kafka://10.0.0.2:9092"]
    sasl = make_app("t-sasl", KafkaSettings(
        security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256", sasl_username="svc",
        sasl_password=SecretStr("pw"),
    ))
    credentials = sasl.conf.broker_credentials
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password, credentials.mechanism.value) == ("svc", "pw", "SCRAM-SHA-256")
