"""Business KPIs: documents ingested, jobs by outcome, records written, searches by cache
result, upload volume (the API's series, services/api/metrics.py), and the ingestion queue.

Jobs run in the API (inline mode) or in the workers (queue mode, the same code and metric
names), so ingestion series are read from both."""

from __future__ import annotations

from ...queues import DEAD_LETTER_QUEUE, INGEST_QUEUE
from ...telemetry import (
    COMPONENT_LABEL,
    RABBITMQ_QUEUE_MESSAGES,
    RABBITMQ_QUEUE_READY,
    Scope,
    matcher,
)
from .panels import Obj, Query, stat, timeseries

TITLE = "Business KPIs"


def panels(scope: Scope) -> list[Obj]:
    api = matcher(scope, **{COMPONENT_LABEL: "api"})
    ingest = matcher(scope, **{COMPONENT_LABEL: "api|worker"})
    done = matcher(scope, **{COMPONENT_LABEL: "api|worker", "result": "completed"})
    waiting = matcher(scope, **{COMPONENT_LABEL: "rabbitmq", "queue": INGEST_QUEUE})
    dead = matcher(scope, **{COMPONENT_LABEL: "rabbitmq", "queue": DEAD_LETTER_QUEUE})
    return [
        stat(
            "Documents ingested (24h)",
            [Query(f"sum(increase(api_ingest_jobs_total{done}[24h]))", "documents")],
            unit="short",
            decimals=0,
        ),
        stat(
            "Uploaded (24h)",
            [Query(f"sum(increase(api_upload_bytes_total{api}[24h]))", "bytes")],
            unit="bytes",
        ),
        timeseries(
            "Ingestion jobs by outcome",
            [
                Query(
                    f"sum by (kind, result) (rate(api_ingest_jobs_total{ingest}[5m]))",
                    "{{kind}} {{result}}",
                )
            ],
            unit="ops",
        ),
        timeseries(
            "Records written to Weaviate",
            [Query(f"sum(rate(api_ingest_records_total{ingest}[5m]))", "records")],
            unit="ops",
        ),
        timeseries(
            "Searches by cache result",
            [Query(f"sum by (cache) (rate(api_search_requests_total{api}[5m]))", "{{cache}}")],
            unit="reqps",
        ),
        timeseries(
            "Upload volume",
            [Query(f"sum by (kind) (rate(api_upload_bytes_total{api}[5m]))", "{{kind}}")],
            unit="Bps",
        ),
        timeseries(
            "Uploads in progress / refused",
            [
                Query(f"sum(api_uploads_in_progress{api})", "in progress"),
                Query(f"sum(rate(api_uploads_refused_total{api}[5m]))", "refused per s"),
            ],
            unit="short",
        ),
        timeseries(
            # Queue mode (messaging enabled): uploads waiting, and those given up on.
            "Ingestion queue",
            [
                Query(f"sum({RABBITMQ_QUEUE_READY}{waiting})", "waiting"),
                Query(f"sum({RABBITMQ_QUEUE_MESSAGES}{dead})", "dead-lettered"),
            ],
            unit="short",
        ),
    ]
