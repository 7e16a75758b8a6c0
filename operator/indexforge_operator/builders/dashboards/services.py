"""Per service (api, ml, excel): request rate by status, 5xx ratio, latency p50/p95/p99 and
requests in flight, one row each."""

from __future__ import annotations

from ...telemetry import (
    COMPONENT_LABEL,
    HTTP_COMPONENTS,
    HTTP_IN_FLIGHT,
    HTTP_LATENCY_BUCKET,
    HTTP_REQUESTS,
    Scope,
    matcher,
)
from .overview import error_ratio
from .panels import Obj, Query, row, timeseries

TITLE = "Services"


def _service(scope: Scope, component: str) -> list[Obj]:
    sel = matcher(scope, **{COMPONENT_LABEL: component})
    bad = matcher(scope, **{COMPONENT_LABEL: component, "status": "5.."})
    buckets = f"sum by (le) (rate({HTTP_LATENCY_BUCKET}{sel}[5m]))"
    return [
        row(component),
        timeseries(
            f"{component}: requests by status",
            [Query(f"sum by (status) (rate({HTTP_REQUESTS}{sel}[5m]))", "{{status}}")],
            unit="reqps",
        ),
        timeseries(
            f"{component}: 5xx ratio",
            [Query(error_ratio(HTTP_REQUESTS + bad, HTTP_REQUESTS + sel, "sum"), "5xx")],
            unit="percentunit",
        ),
        timeseries(
            f"{component}: latency",
            [
                Query(f"histogram_quantile({q}, {buckets})", f"p{int(q * 100)}")
                for q in (0.5, 0.95, 0.99)
            ],
            unit="s",
        ),
        timeseries(
            f"{component}: requests in flight",
            [Query(f"sum({HTTP_IN_FLIGHT}{sel})", "in flight")],
            unit="short",
        ),
    ]


def panels(scope: Scope) -> list[Obj]:
    return [panel for component in HTTP_COMPONENTS for panel in _service(scope, component)]
