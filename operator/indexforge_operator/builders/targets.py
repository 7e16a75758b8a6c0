"""What Prometheus scrapes: one list used by ServiceMonitors and the standalone config."""

from __future__ import annotations

from dataclasses import dataclass

from ..decisions import uses_cluster_operator
from ..naming import Component
from ..spec import IndexForgeSpec
from . import ports


@dataclass(frozen=True)
class ScrapeTarget:
    """Pods behind a component's headless Service, scraped on a named port."""

    component: Component
    port_name: str
    port: int
    path: str = "/metrics"


def scrape_targets(spec: IndexForgeSpec, *, standalone: bool = False) -> list[ScrapeTarget]:
    """`standalone`: the standalone Prometheus's jobs, which also scrape the Alertmanager the
    operator deploys in that mode (with prometheus-operator, Alertmanager is the cluster's)."""
    out = [
        ScrapeTarget("api", "metrics", ports.SERVICE_METRICS),
        ScrapeTarget("ml", "metrics", ports.SERVICE_METRICS),
    ]
    if spec.excel.enabled:
        out.append(ScrapeTarget("excel", "metrics", ports.SERVICE_METRICS))
    if spec.gateway.enabled:
        out.append(ScrapeTarget("gateway", "status", ports.KONG_STATUS))
    if spec.redis.app.exporter.enabled:
        out.append(ScrapeTarget("redis-app", "metrics", ports.REDIS_EXPORTER))
    if spec.redis.ml.exporter.enabled:
        out.append(ScrapeTarget("redis-ml", "metrics", ports.REDIS_EXPORTER))
    if spec.redis.state.exporter.enabled:
        out.append(ScrapeTarget("redis-state", "metrics", ports.REDIS_EXPORTER))
    out.append(ScrapeTarget("weaviate", "metrics", ports.WEAVIATE_METRICS))
    if spec.monitoring.enabled and spec.monitoring.jaeger.enabled:
        # Spans refused or dropped by the collector show up only here.
        out.append(ScrapeTarget("jaeger", "metrics", ports.JAEGER_METRICS))
    if standalone and spec.monitoring.enabled and spec.monitoring.alertmanager.enabled:
        # Failed notifications show up only in Alertmanager's own metrics.
        out.append(ScrapeTarget("alertmanager", "http", ports.ALERTMANAGER))
    if spec.messaging.enabled:
        out.append(ScrapeTarget("worker", "metrics", ports.SERVICE_METRICS))
        if not uses_cluster_operator(spec):
            # The cluster operator's brokers are scraped the way its docs describe.
            out.append(ScrapeTarget("rabbitmq", "metrics", ports.RABBITMQ_METRICS))
    return out
