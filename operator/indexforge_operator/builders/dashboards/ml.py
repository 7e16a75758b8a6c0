"""ML inference: forward-pass latency, batch size, passes per second, device and the
embedding cache's hit ratio (the ML service's own series, services/ml/metrics.py)."""

from __future__ import annotations

from ...telemetry import CACHE_REQUESTS, COMPONENT_LABEL, ML_INFERENCE_BUCKET, Scope, matcher
from .overview import error_ratio
from .panels import Obj, Query, stat, timeseries

TITLE = "ML inference"
EMBEDDINGS_CACHE = "ml-embeddings"  # services/ml/app.py


def panels(scope: Scope) -> list[Obj]:
    ml = matcher(scope, **{COMPONENT_LABEL: "ml"})
    cache = matcher(scope, **{COMPONENT_LABEL: "ml", "cache": EMBEDDINGS_CACHE})
    cache_hits = matcher(
        scope, **{COMPONENT_LABEL: "ml", "cache": EMBEDDINGS_CACHE, "result": "hit|stale"}
    )
    inference = f"sum by (le, model) (rate({ML_INFERENCE_BUCKET}{ml}[5m]))"
    batches = f"sum by (le, model) (rate(ml_batch_size_bucket{ml}[5m]))"
    return [
        timeseries(
            "Inference latency (one forward pass)",
            [
                Query(f"histogram_quantile({q}, {inference})", f"p{int(q * 100)} {{{{model}}}}")
                for q in (0.5, 0.95, 0.99)
            ],
            unit="s",
        ),
        timeseries(
            "Batch size",
            [
                Query(
                    f"sum by (model) (rate(ml_batch_size_sum{ml}[5m])) "
                    f"/ sum by (model) (rate(ml_batch_size_count{ml}[5m]))",
                    "mean {{model}}",
                ),
                Query(f"histogram_quantile(0.95, {batches})", "p95 {{model}}"),
            ],
            unit="short",
        ),
        timeseries(
            "Forward passes per second",
            [Query(f"sum by (model) (rate(ml_batch_size_count{ml}[5m]))", "{{model}}")],
            unit="ops",
        ),
        stat(
            "Device",
            [Query(f"sum by (model, device) (ml_device_info{ml})", "{{device}} ({{model}})")],
            unit="none",
            decimals=0,
        ),
        timeseries(
            "Embedding cache hit ratio",
            [
                Query(
                    error_ratio(CACHE_REQUESTS + cache_hits, CACHE_REQUESTS + cache, "sum"),
                    "hit ratio",
                )
            ],
            unit="percentunit",
        ),
    ]
