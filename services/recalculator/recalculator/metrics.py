"""Prometheus metrics of the runtimes (the core knows nothing of them)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

EVENTS = Counter(
    "backorders_events", "Inputs handled, by outcome", ["status"]
)  # exported as backorders_events_total
DEAD_LETTERS = Counter("backorders_dead_letters", "Inputs refused and dead-lettered")
HELD_SETTLED = Counter(
    "backorders_held_actions_settled",
    "Manual actions held for their orders, then applied or dead-lettered", ["status"],
)
PUBLISHED = Counter("backorders_published_events", "BackorderChanged and ProductBackorderChanged decided")
BATCH_SECONDS = Histogram(
    "backorders_batch_seconds", "Time to handle and commit one batch of inputs",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
RECALCULATION_SECONDS = Histogram(
    "backorders_recalculation_seconds", "Time the engine spent on one recalculating input",
    buckets=(0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.025, 0.1, 1),
)
LATE_RECORDS = Counter(
    "backorders_late_records",
    "Inputs applied after inputs of a later time, their partition having been passed as empty",
)
LAG = Gauge("backorders_consumer_lag", "Records not yet handled, per input partition", ["partition"])


def serve(port: int) -> None:
    """Expose /metrics on 0.0.0.0:port (0: not at all)."""
    if port:
        start_http_server(port)
