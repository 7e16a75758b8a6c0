"""The IndexForge Grafana dashboard (JSON model built as a dict).

Panels: request rate, error rate, p95 latency, ML inference time, cache hit ratio, each per
component of one instance. The queries use the same metric names and target labels as the
alert rules (telemetry.py).
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..naming import Names
from ..telemetry import (
    CACHE_REQUESTS,
    COMPONENT_LABEL,
    GROUP_BY,
    HTTP_COMPONENTS,
    HTTP_LATENCY_BUCKET,
    HTTP_REQUESTS,
    ML_INFERENCE_BUCKET,
    matcher,
)

Obj = dict[str, Any]
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
SCHEMA_VERSION = 39


def _panel(panel_id: int, title: str, expr: str, *, unit: str, x: int, y: int, legend: str) -> Obj:
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [{"refId": "A", "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}],
    }


def dashboard(names: Names) -> Obj:
    http = matcher(names, **{COMPONENT_LABEL: "|".join(HTTP_COMPONENTS)})
    errors = matcher(names, **{COMPONENT_LABEL: "|".join(HTTP_COMPONENTS), "status": "5.."})
    ml = matcher(names, **{COMPONENT_LABEL: "ml"})
    every = matcher(names)
    hits = matcher(names, result="hit|stale")
    by = f"sum by ({GROUP_BY})"
    legend = "{{component}}"
    panels = [
        _panel(
            1,
            "Request rate",
            f"{by} (rate({HTTP_REQUESTS}{http}[5m]))",
            unit="reqps",
            x=0,
            y=0,
            legend=legend,
        ),
        _panel(
            2,
            "Error rate (5xx)",
            f"{by} (rate({HTTP_REQUESTS}{errors}[5m])) / {by} (rate({HTTP_REQUESTS}{http}[5m]))",
            unit="percentunit",
            x=12,
            y=0,
            legend=legend,
        ),
        _panel(
            3,
            "p95 latency",
            f"histogram_quantile(0.95, sum by ({GROUP_BY}, le) "
            f"(rate({HTTP_LATENCY_BUCKET}{http}[5m])))",
            unit="s",
            x=0,
            y=8,
            legend=legend,
        ),
        _panel(
            4,
            "ML inference time (p50 / p95)",
            f"histogram_quantile(0.95, sum by (le, model) (rate({ML_INFERENCE_BUCKET}{ml}[5m])))",
            unit="s",
            x=12,
            y=8,
            legend="p95 {{model}}",
        ),
        _panel(
            5,
            "Cache hit ratio",
            # Stale entries are served too, so they count as hits.
            f"{by} (rate({CACHE_REQUESTS}{hits}[5m])) / {by} (rate({CACHE_REQUESTS}{every}[5m]))",
            unit="percentunit",
            x=0,
            y=16,
            legend=legend,
        ),
    ]
    panels[3]["targets"].insert(
        0,
        {
            "refId": "B",
            "datasource": DATASOURCE,
            "expr": f"histogram_quantile(0.5, sum by (le, model) "
            f"(rate({ML_INFERENCE_BUCKET}{ml}[5m])))",
            "legendFormat": "p50 {{model}}",
        },
    )
    return {
        # Grafana uids are at most 40 characters; a digest keeps them unique and stable.
        "uid": "indexforge-"
        + hashlib.sha256(f"{names.namespace}/{names.instance}".encode()).hexdigest()[:16],
        "title": f"IndexForge {names.namespace}/{names.instance}",
        "tags": ["indexforge"],
        "timezone": "browser",
        "editable": False,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": "now-1h", "to": "now"},
        "panels": panels,
    }
