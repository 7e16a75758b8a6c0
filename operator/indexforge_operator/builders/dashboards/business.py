"""Business KPIs: documents ingested, jobs by outcome, records written, searches by cache
result, upload volume (the API's series, services/api/metrics.py)."""

from __future__ import annotations

from ...telemetry import COMPONENT_LABEL, Scope, matcher
from .panels import Obj, Query, stat, timeseries

TITLE = "Business KPIs"


def panels(scope: Scope) -> list[Obj]:
    api = matcher(scope, **{COMPONENT_LABEL: "api"})
    done = matcher(scope, **{COMPONENT_LABEL: "api", "result": "completed"})
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
                    f"sum by (kind, result) (rate(api_ingest_jobs_total{api}[5m]))",
                    "{{kind}} {{result}}",
                )
            ],
            unit="ops",
        ),
        timeseries(
            "Records written to Weaviate",
            [Query(f"sum(rate(api_ingest_records_total{api}[5m]))", "records")],
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
    ]
