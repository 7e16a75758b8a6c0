"""Names of the ingestion queues, as the services declare them (services/messaging/topology.py
with its default prefix, which the operator also sets explicitly): the scaler, the alerts
and the workers must agree on them."""

from __future__ import annotations

from typing import Final

QUEUE_PREFIX: Final = "indexforge"
INGEST_QUEUE: Final = f"{QUEUE_PREFIX}.ingest"
DEAD_LETTER_QUEUE: Final = f"{QUEUE_PREFIX}.ingest.dead"
