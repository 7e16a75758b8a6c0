"""The alerting rules: one definition for the PrometheusRule and the standalone rule file.

Thresholds come from `spec.monitoring.alerts`. Memory and CPU are measured against the
limits in the spec (process metrics of each service divided by its limit), which works in
both monitoring modes without cAdvisor access.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .alert_model import Alert
from .messaging_alerts import messaging_alerts
from .naming import Names
from .quantity import parse_quantity
from .slo import slo_groups
from .spec import IndexForgeSpec
from .spec_common import Resources
from .telemetry import (
    ALERTMANAGER_NOTIFICATIONS_FAILED,
    COMPONENT_LABEL,
    GROUP_BY,
    HTTP_COMPONENTS,
    HTTP_LATENCY_BUCKET,
    HTTP_REQUESTS,
    PROCESS_CPU,
    PROCESS_RSS,
    REDIS_MEMORY_MAX,
    REDIS_MEMORY_USED,
    matcher,
)

WINDOW = "5m"


def runbook_url(spec: IndexForgeSpec, alert: str) -> str:
    """`<runbookBaseUrl>/<AlertName>.md`: the default base is docs/runbooks in the repository."""
    return f"{spec.monitoring.alerts.runbook_base_url.rstrip('/')}/{alert}.md"


def _number(value: Decimal | float) -> str:
    """Shortest exact decimal text PromQL accepts (no exponent for the usual values)."""
    text = format(Decimal(str(value)).normalize(), "f")
    return text


def _limited(spec: IndexForgeSpec) -> dict[str, Resources]:
    """Components exporting process metrics, with their resources."""
    out = {"api": spec.api.resources, "ml": spec.ml.resources}
    if spec.excel.enabled:
        out["excel"] = spec.excel.resources
    out["weaviate"] = spec.weaviate.resources
    return out


def _per_component(spec: IndexForgeSpec, names: Names, *, resource: str, series: str) -> str | None:
    terms = []
    for component, res in _limited(spec).items():
        if resource not in res.limits:
            continue  # no limit, no meaningful percentage
        limit = _number(parse_quantity(res.limits[resource]))
        sel = matcher(names, **{COMPONENT_LABEL: component})
        terms.append(f"({series.format(sel=sel)} / {limit})")
    return " or ".join(terms) if terms else None


def alerts(spec: IndexForgeSpec, names: Names, *, standalone: bool = False) -> list[Alert]:
    """Every alert of one instance (empty when alerts are off). `standalone`: the operator
    deploys Alertmanager (standalone mode), which is then watched too."""
    cfg = spec.monitoring.alerts
    if not (spec.monitoring.enabled and cfg.enabled):
        return []
    http = matcher(names, **{COMPONENT_LABEL: "|".join(HTTP_COMPONENTS)})
    errors = matcher(names, **{COMPONENT_LABEL: "|".join(HTTP_COMPONENTS), "status": "5.."})
    error_ratio = _number(Decimal(str(cfg.error_rate_percent)) / 100)
    latency = _number(Decimal(cfg.latency_p95_milliseconds) / 1000)
    memory = _number(Decimal(cfg.memory_percent) / 100)
    cpu = _number(Decimal(cfg.cpu_percent) / 100)
    out = [
        Alert(
            "IndexForgeHighErrorRate",
            f"sum by ({GROUP_BY}) (rate({HTTP_REQUESTS}{errors}[{WINDOW}]))\n"
            f"  / sum by ({GROUP_BY}) (rate({HTTP_REQUESTS}{http}[{WINDOW}]))\n"
            f"  > {error_ratio}",
            "critical",
            "{{ $labels.component }} answers too many requests with 5xx",
            f"More than {cfg.error_rate_percent:g}% of requests to {{{{ $labels.component }}}} "
            f"failed with a 5xx status over the last {WINDOW}.",
        ),
        Alert(
            "IndexForgeHighLatencyP95",
            f"histogram_quantile(0.95, sum by ({GROUP_BY}, le) "
            f"(rate({HTTP_LATENCY_BUCKET}{http}[{WINDOW}])))\n  > {latency}",
            "warning",
            "{{ $labels.component }} p95 latency is high",
            f"95th percentile latency of {{{{ $labels.component }}}} is above "
            f"{cfg.latency_p95_milliseconds} ms.",
        ),
    ]
    mem_expr = _per_component(spec, names, resource="memory", series=PROCESS_RSS + "{sel}")
    if mem_expr:
        out.append(
            Alert(
                "IndexForgeHighMemory",
                f"({mem_expr})\n  > {memory}",
                "warning",
                "{{ $labels.component }} is close to its memory limit",
                f"{{{{ $labels.component }}}} uses more than {cfg.memory_percent}% of its "
                "memory limit; it will be OOM-killed when it reaches it.",
            )
        )
    cpu_expr = _per_component(
        spec, names, resource="cpu", series=f"rate({PROCESS_CPU}{{sel}}[{WINDOW}])"
    )
    if cpu_expr:
        out.append(
            Alert(
                "IndexForgeHighCPU",
                f"({cpu_expr})\n  > {cpu}",
                "warning",
                "{{ $labels.component }} is close to its CPU limit",
                f"{{{{ $labels.component }}}} uses more than {cfg.cpu_percent}% of its CPU "
                "limit and is being throttled.",
            )
        )
    redis = matcher(names)
    out.append(
        Alert(
            "IndexForgeRedisMemoryHigh",
            f"({REDIS_MEMORY_USED}{redis} / ({REDIS_MEMORY_MAX}{redis} > 0))\n  > {memory}",
            "warning",
            "{{ $labels.component }} is close to maxmemory",
            f"{{{{ $labels.component }}}} holds more than {cfg.memory_percent}% of its "
            "maxmemory; eviction is about to start or has started.",
        )
    )
    if standalone and spec.monitoring.alertmanager.enabled:
        # Alerts that cannot be delivered are silent: watch the deliverer itself.
        am = matcher(names, **{COMPONENT_LABEL: "alertmanager"})
        out.append(
            Alert(
                "IndexForgeAlertmanagerNotificationsFailing",
                f"sum by ({GROUP_BY}, integration) "
                f"(rate({ALERTMANAGER_NOTIFICATIONS_FAILED}{am}[{WINDOW}]))\n  > 0",
                "critical",
                "Alertmanager fails to send notifications via {{ $labels.integration }}",
                "Alertmanager could not deliver notifications through the "
                "{{ $labels.integration }} integration over the last 5m; alerts may reach "
                "no one.",
            )
        )
    out += messaging_alerts(spec, names)
    out.append(
        Alert(
            "IndexForgeTargetDown",
            f"up{redis} == 0",
            "warning",
            "{{ $labels.component }} metrics endpoint is down",
            "Prometheus cannot scrape {{ $labels.component }} ({{ $labels.instance }}).",
        )
    )
    return out


def rule_groups(
    spec: IndexForgeSpec, names: Names, *, standalone: bool = False
) -> list[dict[str, Any]]:
    """Prometheus rule groups (the `groups` of a rule file and of a PrometheusRule spec):
    the alerts, then the SLO groups (recorded even when alerts are off: the SLO dashboard
    reads them)."""
    rules = [
        {
            "alert": a.name,
            "expr": a.expr,
            "for": spec.monitoring.alerts.for_duration,
            # namespace: prometheus-operator's Alertmanager routes an AlertmanagerConfig only
            # alerts of its namespace (matcher strategy OnNamespace), and the aggregations
            # above drop the scraped label.
            "labels": {"severity": a.severity, "namespace": names.namespace},
            "annotations": {
                "summary": a.summary,
                "description": a.description,
                "runbook_url": runbook_url(spec, a.name),
            },
        }
        for a in alerts(spec, names, standalone=standalone)
    ]
    groups = (
        [{"name": f"indexforge.{names.namespace}.{names.instance}", "rules": rules}]
        if rules
        else []
    )
    mon = spec.monitoring
    if mon.enabled and mon.slo.enabled:
        groups += slo_groups(
            mon.slo,
            names,
            gateway=spec.gateway.enabled,
            alerts=mon.alerts.enabled,
            runbook_base=mon.alerts.runbook_base_url.rstrip("/"),
        )
    return groups


def rule_file(spec: IndexForgeSpec, names: Names) -> dict[str, Any]:
    """The standalone Prometheus's rule file (standalone mode: Alertmanager is ours)."""
    return {"groups": rule_groups(spec, names, standalone=True)}
