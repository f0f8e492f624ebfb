"""What the three services share below them: the database engine factory, the dialect's
insert and upsert, locks, the migration runner, logging, the consumers' intake and stores,
Kafka settings and faust helpers. It imports no service (docs/architecture.md)."""
