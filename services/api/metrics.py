"""API metrics: ingestion jobs, records and upload bytes, uploads in progress, search cache results,
per-consumer requests."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.jobs = Counter(
            "api_ingest_jobs_total",
            "Finished ingestion jobs by document kind and result.",
            ["kind", "result"],
            registry=registry,
        )
        self.upload_bytes = Counter(
            "api_upload_bytes_total",
            "Bytes of accepted uploads (documents queued for ingestion) by document kind.",
            ["kind"],
            registry=registry,
        )
        self.records = Counter(
            "api_ingest_records_total", "Records written to Weaviate.", registry=registry
        )
        self.searches = Counter(
            "api_search_requests_total",
            "Searches by where the answer came from (hit, stale, miss).",
            ["cache"],
            registry=registry,
        )
        self.pending_rollbacks = Gauge(
            "api_pending_rollbacks",
            "Documents of failed jobs whose partial writes still wait to be deleted.",
            registry=registry,
        )
        self.uploads_in_progress = Gauge(
            "api_uploads_in_progress",
            "Uploads being received and read (bounded by max_concurrent_uploads).",
            registry=registry,
        )
        self.uploads_refused = Counter(
            "api_uploads_refused_total",
            "Uploads answered 429 because max_concurrent_uploads were in progress.",
            registry=registry,
        )
        self.consumer_requests = Counter(
            "api_consumer_requests_total",
            "Requests by API consumer (Kong's X-Consumer-Username / X-Consumer-ID).",
            ["consumer"],
            registry=registry,
        )
        self.consumer_window = Gauge(
            "api_consumer_window_requests",
            "Requests of the consumer in the current rate-limit window (all replicas, Redis).",
            ["consumer"],
            registry=registry,
        )
