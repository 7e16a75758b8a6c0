"""Overview: request rate, 5xx ratio, p95 latency, ML inference time and cache hit ratio of
every component of one instance (the original IndexForge dashboard; its uid is kept)."""

from __future__ import annotations

from ...telemetry import (
    CACHE_REQUESTS,
    COMPONENT_LABEL,
    GROUP_BY,
    HTTP_COMPONENTS,
    HTTP_LATENCY_BUCKET,
    HTTP_REQUESTS,
    ML_INFERENCE_BUCKET,
    Scope,
    matcher,
)
from .panels import Obj, Query, timeseries

TITLE = "Overview"
BY = f"sum by ({GROUP_BY})"
LEGEND = "{{component}}"


def error_ratio(bad: str, total: str, by: str = BY) -> str:
    """part/total over 5m; `or ... * 0` shows 0, not "no data", while the part's labelled
    series does not exist yet (nothing failed, nothing hit)."""
    return f"({by} (rate({bad}[5m])) or {by} (rate({total}[5m])) * 0) / {by} (rate({total}[5m]))"


def panels(scope: Scope) -> list[Obj]:
    http = matcher(scope, **{COMPONENT_LABEL: "|".join(HTTP_COMPONENTS)})
    errors = matcher(scope, **{COMPONENT_LABEL: "|".join(HTTP_COMPONENTS), "status": "5.."})
    ml = matcher(scope, **{COMPONENT_LABEL: "ml"})
    hits = matcher(scope, result="hit|stale")
    every = matcher(scope)
    inference = f"sum by (le, model) (rate({ML_INFERENCE_BUCKET}{ml}[5m]))"
    return [
        timeseries(
            "Request rate",
            [Query(f"{BY} (rate({HTTP_REQUESTS}{http}[5m]))", LEGEND)],
            unit="reqps",
        ),
        timeseries(
            "Error rate (5xx)",
            [Query(error_ratio(HTTP_REQUESTS + errors, HTTP_REQUESTS + http), LEGEND)],
            unit="percentunit",
        ),
        timeseries(
            "p95 latency",
            [
                Query(
                    f"histogram_quantile(0.95, sum by ({GROUP_BY}, le) "
                    f"(rate({HTTP_LATENCY_BUCKET}{http}[5m])))",
                    LEGEND,
                )
            ],
            unit="s",
        ),
        timeseries(
            "ML inference time (p50 / p95)",
            [
                Query(f"histogram_quantile(0.5, {inference})", "p50 {{model}}"),
                Query(f"histogram_quantile(0.95, {inference})", "p95 {{model}}"),
            ],
            unit="s",
        ),
        timeseries(
            "Cache hit ratio",
            # Stale entries are served too, so they count as hits.
            [
                Query(
                    f"{BY} (rate({CACHE_REQUESTS}{hits}[5m])) "
                    f"/ {BY} (rate({CACHE_REQUESTS}{every}[5m]))",
                    LEGEND,
                )
            ],
            unit="percentunit",
        ),
    ]
