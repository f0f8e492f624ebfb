"""Kafka adapters: connection settings, topics, and the outbox relay."""
