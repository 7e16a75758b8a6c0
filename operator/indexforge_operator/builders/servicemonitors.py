"""prometheus-operator objects: one ServiceMonitor per scraped component, one PrometheusRule.

Only built when the prometheus-operator CRDs exist. Each ServiceMonitor selects the
component's headless Service (the scrape label keeps the ClusterIP Service out) and carries
`monitoring.serviceMonitor.labels` so the user's Prometheus selectors pick it up.
"""

from __future__ import annotations

from ..alerts import rule_groups
from ..naming import LABEL_SCRAPE, Names, selector_labels
from ..spec import IndexForgeSpec
from ..telemetry import target_labels
from .common import Obj, meta
from .targets import scrape_targets

MONITORING_API = "monitoring.coreos.com/v1"


def build_service_monitors(spec: IndexForgeSpec, names: Names) -> list[Obj]:
    sm = spec.monitoring.service_monitor
    out: list[Obj] = []
    for target in scrape_targets(spec):
        relabel = [
            {"targetLabel": key, "replacement": value, "action": "replace"}
            for key, value in target_labels(names, target.component).items()
        ]
        out.append(
            {
                "apiVersion": MONITORING_API,
                "kind": "ServiceMonitor",
                "metadata": meta(
                    names,
                    target.component,
                    names.component(target.component),
                    extra_labels=sm.labels,
                ),
                "spec": {
                    "selector": {
                        "matchLabels": {
                            **selector_labels(names, target.component),
                            LABEL_SCRAPE: "true",
                        }
                    },
                    "namespaceSelector": {"matchNames": [names.namespace]},
                    "endpoints": [
                        {
                            "port": target.port_name,
                            "path": target.path,
                            "interval": sm.interval,
                            "relabelings": relabel,
                        }
                    ],
                },
            }
        )
    return out


def build_prometheus_rule(spec: IndexForgeSpec, names: Names) -> list[Obj]:
    groups = rule_groups(spec, names)
    if not groups:
        return []
    return [
        {
            "apiVersion": MONITORING_API,
            "kind": "PrometheusRule",
            "metadata": meta(
                names,
                "prometheus",
                names.prometheus_rules,
                extra_labels=spec.monitoring.service_monitor.labels,
            ),
            "spec": {"groups": groups},
        }
    ]
