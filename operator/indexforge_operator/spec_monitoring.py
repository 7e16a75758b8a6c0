"""Spec of the monitoring stack: Prometheus, Grafana, Jaeger, ServiceMonitors and alerts."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from .spec_alertmanager import AlertmanagerSpec
from .spec_common import (
    Image,
    LabelMap,
    PullPolicy,
    Resources,
    SpecModel,
    grow_only,
    image_field,
    pull_policy_field,
    resources_field,
)
from .spec_slo import SloSpec

StorageSize = Annotated[str, StringConstraints(max_length=32, pattern=r"^[0-9]+(Mi|Gi)$")]
Retention = Annotated[str, StringConstraints(max_length=8, pattern=r"^[1-9][0-9]{0,4}(h|d|w)$")]
Interval = Annotated[str, StringConstraints(max_length=8, pattern=r"^[1-9][0-9]{0,3}(s|m)$")]
HttpUrl = Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://[^\s]+$")]


class PrometheusSpec(SpecModel):
    """Standalone Prometheus, deployed when the prometheus-operator CRDs are absent."""

    enabled: bool = Field(
        default=True, description="Deploy Prometheus when there is no prometheus-operator."
    )
    image: Image = image_field("quay.io/prometheus/prometheus:v2.53.2", "Prometheus")
    image_pull_policy: PullPolicy = pull_policy_field()
    retention: Retention = Field(
        default="15d", description="How long samples are kept (h, d or w)."
    )
    # The platform plan's 15 s: alerts `for: 5m` then rest on ~20 samples, not ~10.
    scrape_interval: Interval = Field(default="15s", description="Scrape interval of every target.")
    evaluation_interval: Interval = Field(default="15s", description="Rule evaluation interval.")
    storage_size: StorageSize = Field(
        default="10Gi",
        description="Size of the TSDB's PersistentVolumeClaim (it may grow, never "
        "shrink: the operator expands the PVC).",
        json_schema_extra=grow_only("prometheus.storageSize"),
    )
    external_url: HttpUrl | None = Field(
        default=None,
        description="Prometheus Grafana queries when the stack's own Prometheus is not deployed "
        "(prometheus-operator mode); defaults to prometheus-operated in this namespace.",
    )
    resources: Resources = resources_field(
        cpu_request="200m",
        memory_request="1Gi",
        cpu_limit="1",
        memory_limit="2Gi",
        what="Prometheus",
    )


class GrafanaSpec(SpecModel):
    """Grafana with the Prometheus/Jaeger datasources and the IndexForge dashboard."""

    enabled: bool = Field(default=True, description="Deploy Grafana.")
    image: Image = image_field("docker.io/grafana/grafana:11.2.0", "Grafana")
    image_pull_policy: PullPolicy = pull_policy_field()
    admin_user: Annotated[str, StringConstraints(max_length=64, pattern=r"^[a-z][a-z0-9_-]*$")] = (
        Field(default="admin", description="Admin login; the password is generated into a Secret.")
    )
    resources: Resources = resources_field(
        cpu_request="100m",
        memory_request="512Mi",
        cpu_limit="500m",
        memory_limit="1Gi",
        what="Grafana",
    )
    storage_size: StorageSize = Field(
        default="1Gi",
        description="Size of Grafana's PersistentVolumeClaim (grafana.db: users, preferences, "
        "annotations); it may grow, never shrink (the operator expands the PVC).",
        json_schema_extra=grow_only("grafana.storageSize"),
    )


class JaegerSpec(SpecModel):
    """Jaeger v2 (OTLP in, Badger span store on a PVC) receiving traces from every service."""

    enabled: bool = Field(default=True, description="Deploy Jaeger; services export traces to it.")
    image: Image = image_field("docker.io/jaegertracing/jaeger:2.13.0", "Jaeger")
    image_pull_policy: PullPolicy = pull_policy_field()
    retention: Retention = Field(default="7d", description="How long spans are kept (h, d or w).")
    storage_size: Annotated[str, StringConstraints(max_length=32, pattern=r"^[0-9]+(Mi|Gi)$")] = (
        Field(
            default="5Gi",
            description="Size of the span store's PersistentVolumeClaim (a StatefulSet claim "
            "template): it may grow, never shrink (the operator expands the PVC).",
            json_schema_extra=grow_only("jaeger.storageSize"),
        )
    )
    resources: Resources = resources_field(
        cpu_request="100m",
        memory_request="1Gi",
        cpu_limit="1",
        memory_limit="2Gi",
        what="Jaeger",
    )


class ConfigReloaderSpec(SpecModel):
    """The sidecar that makes Prometheus and Alertmanager reload a changed config or rule file
    (POST /-/reload) instead of restarting: a restart would lose the in-memory head block's
    unflushed state and interrupt alert evaluation."""

    image: Image = image_field(
        "quay.io/prometheus-operator/prometheus-config-reloader:v0.93.0", "the config reloader"
    )
    image_pull_policy: PullPolicy = pull_policy_field()


class ScrapeFrom(SpecModel):
    """Which pods may reach the metrics ports when Prometheus runs outside the instance
    (prometheus-operator mode). Only metrics ports are opened to them, never serving ports."""

    namespace_selector: LabelMap = Field(
        default_factory=dict,
        max_length=16,
        description="Labels of the namespaces Prometheus runs in; empty matches every namespace "
        "(e.g. kubernetes.io/metadata.name: monitoring).",
    )
    pod_selector: LabelMap = Field(
        default_factory=lambda: {"app.kubernetes.io/name": "prometheus"},
        max_length=16,
        description="Labels of the Prometheus pods (kube-prometheus-stack's default shown).",
    )


class ServiceMonitorSpec(SpecModel):
    """ServiceMonitor/PrometheusRule settings (prometheus-operator mode)."""

    scrape_from: ScrapeFrom = Field(
        default=ScrapeFrom(), description="Who may scrape the metrics ports (NetworkPolicy)."
    )

    labels: LabelMap = Field(
        default_factory=dict,
        max_length=16,
        description="Extra labels on ServiceMonitors and the PrometheusRule, so a Prometheus "
        "serviceMonitorSelector/ruleSelector picks them up (e.g. release: kube-prometheus-stack).",
    )
    interval: Interval = Field(default="15s", description="Scrape interval set on every endpoint.")


class AlertsSpec(SpecModel):
    """Alert thresholds; one rule file serves both monitoring modes."""

    enabled: bool = Field(default=True, description="Install the alerting rules.")
    error_rate_percent: float = Field(
        default=1.0, gt=0, le=100, description="Alert when 5xx responses exceed this % of requests."
    )
    latency_p95_milliseconds: int = Field(
        default=500, ge=1, le=600_000, description="Alert when p95 request latency exceeds this."
    )
    memory_percent: int = Field(
        default=85, ge=1, le=100, description="Alert above this % of memory limit."
    )
    cpu_percent: int = Field(
        default=80, ge=1, le=100, description="Alert above this % of the CPU limit."
    )
    for_duration: Interval = Field(
        default="5m", description="How long a condition holds before firing."
    )
    runbook_base_url: HttpUrl = Field(
        default="https://github.com/indexforge/indexforge/blob/main/docs/runbooks",
        description="Base URL of the runbooks (docs/runbooks of the repository); each alert "
        "links <base>/<AlertName>.md.",
    )


class MonitoringSpec(SpecModel):
    """Metrics, dashboards, traces and alerts."""

    enabled: bool = Field(default=True, description="Master switch of everything under monitoring.")
    prometheus: PrometheusSpec = Field(
        default=PrometheusSpec(), description="Standalone Prometheus."
    )
    grafana: GrafanaSpec = Field(default=GrafanaSpec(), description="Grafana.")
    jaeger: JaegerSpec = Field(default=JaegerSpec(), description="Jaeger tracing backend.")
    service_monitor: ServiceMonitorSpec = Field(
        default=ServiceMonitorSpec(), description="prometheus-operator objects."
    )
    alerts: AlertsSpec = Field(default=AlertsSpec(), description="Alerting rules and thresholds.")
    alertmanager: AlertmanagerSpec = Field(
        default=AlertmanagerSpec(), description="Alert delivery (Alertmanager and its receivers)."
    )
    slo: SloSpec = Field(default=SloSpec(), description="Service level objectives.")
    config_reloader: ConfigReloaderSpec = Field(
        default=ConfigReloaderSpec(),
        description="Sidecar reloading Prometheus/Alertmanager when their config changes.",
    )
