"""Shared pieces of the dashboards: datasource, panels, layout, the dashboard envelope.

Panels are plain dicts in Grafana's dashboard JSON model (schemaVersion 39); a test
round-trips every dashboard through grafana-foundation-sdk's model so an unknown key fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
SCHEMA_VERSION = 39
WIDTH = 24  # Grafana's grid
HEIGHT = 8


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


def _targets(queries: list[Query]) -> list[Obj]:
    # refIds A, B, ... in order; Grafana needs them unique within a panel.
    return [
        {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": q.expr,
         "legendFormat": q.legend}
        for i, q in enumerate(queries)
    ]  # fmt: skip


def timeseries(title: str, queries: list[Query], *, unit: str) -> Obj:
    return {
        "type": "timeseries",
        "title": title,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": _targets(queries),
    }


def stat(title: str, queries: list[Query], *, unit: str, decimals: int | None = None) -> Obj:
    defaults: Obj = {"unit": unit}
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat",
        "title": title,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
        "targets": _targets(queries),
    }


def row(title: str) -> Obj:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def layout(panels: list[Obj], *, columns: int = 2) -> list[Obj]:
    """Ids in order and grid positions: rows span the width, other panels fill `columns`."""
    out: list[Obj] = []
    x = y = 0
    width = WIDTH // columns
    for panel_id, panel in enumerate(panels, start=1):
        if panel["type"] == "row":
            if x:
                x, y = 0, y + HEIGHT
            out.append({"id": panel_id, **panel, "gridPos": {"h": 1, "w": WIDTH, "x": 0, "y": y}})
            y += 1
            continue
        out.append({"id": panel_id, **panel, "gridPos": {"h": HEIGHT, "w": width, "x": x, "y": y}})
        x += width
        if x >= WIDTH:
            x, y = 0, y + HEIGHT
    return out


def board(*, uid: str, title: str, tags: list[str], panels: list[Obj], columns: int = 2) -> Obj:
    return {
        "uid": uid,
        "title": title,
        "tags": ["indexforge", *tags],
        "timezone": "browser",
        "editable": False,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": "now-1h", "to": "now"},
        "panels": layout(panels, columns=columns),
        # Required by the dashboard schema (Grafana adds them on save otherwise).
        "templating": {"list": []},
        "annotations": {"list": []},
    }
