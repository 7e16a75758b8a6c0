"""The Grafana dashboards of one instance, one ConfigMap each.

overview (the original dashboard, uid unchanged), services, infra, ml, business and slo; each
module builds its panels from the metric names in telemetry.py. Standalone Grafana mounts the
ConfigMaps into its file provider's folder (one projected volume); in prometheus-operator mode
they also carry `grafana_dashboard: "1"`, the label kube-prometheus-stack's Grafana sidecar
collects dashboards by.

The static chart gets the same JSON generated (hack/charts.py writes files/dashboards/ with
placeholders for namespace, release and uid digest), so there is one source.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from types import ModuleType
from typing import Final

from ...naming import Names
from ...spec import IndexForgeSpec
from ...telemetry import Scope
from ..common import Obj, meta
from . import business, infra, ml, overview, services, slo
from .panels import board

MODULES: Final[dict[str, ModuleType]] = {
    "overview": overview,
    "services": services,
    "infra": infra,
    "ml": ml,
    "business": business,
    "slo": slo,
}
SIDECAR_LABEL: Final = {"grafana_dashboard": "1"}


def uid_digest(scope: Scope) -> str:
    """16 hex digits of namespace/instance: uids unique per instance, stable, <= 40 chars."""
    return hashlib.sha256(f"{scope.namespace}/{scope.instance}".encode()).hexdigest()[:16]


def uid(key: str, digest: str) -> str:
    # "indexforge-<16>" is the original dashboard's uid; the others add "-<key>" (<= 40).
    return f"indexforge-{digest}" if key == "overview" else f"indexforge-{digest}-{key}"


def dashboards(scope: Scope, *, digest: str) -> dict[str, Obj]:
    """key -> dashboard JSON model."""
    out = {}
    for key, module in MODULES.items():
        title = f"IndexForge {scope.namespace}/{scope.instance}"
        panels: Callable[[Scope], list[Obj]] = module.panels
        out[key] = board(
            uid=uid(key, digest),
            title=title if key == "overview" else f"{title}: {module.TITLE}",
            tags=[] if key == "overview" else [key],
            panels=panels(scope),
        )
    return out


def file_name(key: str) -> str:
    return f"indexforge-{key}.json"


def to_json(dashboard: Obj) -> str:
    return json.dumps(dashboard, indent=2, sort_keys=True) + "\n"


def dashboard_files(names: Names) -> dict[str, str]:
    """file name -> JSON text, every dashboard (what Grafana's file provider reads)."""
    boards = dashboards(names, digest=uid_digest(names))
    return {file_name(key): to_json(b) for key, b in boards.items()}


def build_dashboards(spec: IndexForgeSpec, names: Names, *, prometheus_operator: bool) -> list[Obj]:
    """One ConfigMap per dashboard, whenever a Grafana can show them: ours, or the cluster's
    (its sidecar finds them by label in prometheus-operator mode)."""
    mon = spec.monitoring
    if not (mon.enabled and (mon.grafana.enabled or prometheus_operator)):
        return []
    extra = SIDECAR_LABEL if prometheus_operator else None
    boards = dashboards(names, digest=uid_digest(names))
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(names, "grafana", names.grafana_dashboard(key), extra_labels=extra),
            "data": {file_name(key): to_json(b)},
        }
        for key, b in boards.items()
    ]


def dashboards_volume(names: Names, name: str) -> Obj:
    """Every dashboard ConfigMap in one folder, for Grafana's file provider."""
    return {
        "name": name,
        "projected": {
            "sources": [{"configMap": {"name": names.grafana_dashboard(key)}} for key in MODULES]
        },
    }
