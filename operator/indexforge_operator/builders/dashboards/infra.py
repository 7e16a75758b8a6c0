"""Infrastructure: both Redis instances (memory, evictions, connections, hit ratio; the
redis_exporter sidecars' series) and Weaviate (objects, query latency, HTTP traffic, heap)."""

from __future__ import annotations

from ...telemetry import COMPONENT_LABEL, REDIS_MEMORY_MAX, REDIS_MEMORY_USED, Scope, matcher
from .panels import Obj, Query, row, timeseries

TITLE = "Infrastructure"
REDIS = "sum by (component)"


def panels(scope: Scope) -> list[Obj]:
    redis = matcher(scope, **{COMPONENT_LABEL: "redis-app|redis-ml"})
    wv = matcher(scope, **{COMPONENT_LABEL: "weaviate"})
    every = matcher(scope)
    hits = f"{REDIS} (rate(redis_keyspace_hits_total{redis}[5m]))"
    misses = f"{REDIS} (rate(redis_keyspace_misses_total{redis}[5m]))"
    return [
        timeseries(
            "Targets up",
            [Query(f"up{every}", "{{component}} {{instance}}")],
            unit="short",
        ),
        row("Redis"),
        timeseries(
            "Redis memory",
            [
                Query(f"{REDIS} ({REDIS_MEMORY_USED}{redis})", "{{component}} used"),
                Query(f"{REDIS} ({REDIS_MEMORY_MAX}{redis})", "{{component}} maxmemory"),
            ],
            unit="bytes",
        ),
        timeseries(
            "Redis evictions",
            [Query(f"{REDIS} (rate(redis_evicted_keys_total{redis}[5m]))", "{{component}}")],
            unit="ops",
        ),
        timeseries(
            "Redis connected clients",
            [Query(f"{REDIS} (redis_connected_clients{redis})", "{{component}}")],
            unit="short",
        ),
        timeseries(
            "Redis keyspace hit ratio",
            [Query(f"{hits} / ({hits} + {misses})", "{{component}}")],
            unit="percentunit",
        ),
        row("Weaviate"),
        timeseries(
            "Weaviate objects",
            [Query(f"sum by (class_name) (object_count{wv})", "{{class_name}}")],
            unit="short",
        ),
        timeseries(
            "Weaviate query latency p95",
            [
                Query(
                    "histogram_quantile(0.95, sum by (le, query_type) "
                    f"(rate(queries_durations_ms_bucket{wv}[5m])))",
                    "{{query_type}}",
                )
            ],
            unit="ms",
        ),
        timeseries(
            "Weaviate HTTP requests",
            [
                Query(
                    "sum by (status_code) "
                    f"(rate(weaviate_http_request_duration_seconds_count{wv}[5m]))",
                    "{{status_code}}",
                )
            ],
            unit="reqps",
        ),
        timeseries(
            "Weaviate heap in use",
            [Query(f"sum(go_memstats_heap_inuse_bytes{wv})", "heap")],
            unit="bytes",
        ),
    ]
