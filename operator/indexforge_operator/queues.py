"""The RabbitMQ objects of ingestion as the services declare them (services/messaging/
topology.py and retry.py, with their default prefix, which the operator also sets
explicitly): the scaler, the alerts, the workers and the topology operator's objects must
agree on them. A test compares these constants with the services' own."""

from __future__ import annotations

from typing import Final

QUEUE_PREFIX: Final = "indexforge"
EXCHANGE: Final = f"{QUEUE_PREFIX}.events"
INGEST_QUEUE: Final = f"{QUEUE_PREFIX}.ingest"
DEAD_LETTER_QUEUE: Final = f"{QUEUE_PREFIX}.ingest.dead"
JOBS_QUEUE: Final = f"{QUEUE_PREFIX}.jobs"
INGEST_REQUESTED: Final = "document.ingest.requested"
JOB_OUTCOMES: Final = ("document.indexed", "document.failed")
# Redeliveries of a message whose worker died holding it, then the DLQ.
DELIVERY_LIMIT: Final = 10
# Retry backoff: base, 2 base, 4 base, ... at most the cap (seconds).
RETRY_BASE_SECONDS: Final = 2.0
RETRY_MAX_SECONDS: Final = 300.0


def retry_queue(delay_ms: int) -> str:
    return f"{INGEST_QUEUE}.retry.{delay_ms}ms"


def retry_delays_ms(max_attempts: int) -> list[int]:
    """The delays (ms) a job's retries wait, one queue each: after attempts 1..max-1."""
    delays = {
        max(1, round(min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempt - 1)) * 1000))
        for attempt in range(1, max_attempts)
    }
    return sorted(delays)
