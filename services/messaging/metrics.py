"""Queue metrics of a process (API publisher, worker consumer), in the service's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

# What became of a delivered message: done (acked after the job completed), failed (acked,
# the input was refused), retried (copied to the retry queue), invalid and exhausted (both
# dead-lettered: not a message, or out of attempts).
OUTCOMES = ("done", "failed", "retried", "invalid", "exhausted")


class QueueMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "api_queue_messages_total",
            "Ingestion messages handled by this worker, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.publish_failures = Counter(
            "api_queue_publish_failures_total",
            "Messages the broker did not confirm (uploads answered 503), by message type.",
            ["type"],
            registry=registry,
        )
        self.consuming = Gauge(
            "api_queue_consuming",
            "1 while this worker has a consumer on the ingest queue.",
            registry=registry,
        )
        for outcome in OUTCOMES:  # every series exists from the start (rate() needs it)
            self.messages.labels(outcome)
