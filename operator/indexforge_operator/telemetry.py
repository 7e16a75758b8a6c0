"""Metric and label names shared by alerts, dashboards and scrape configs.

The metric names are what the services export (services/common/metrics.py and the ML
service); the three target labels are attached by relabelling in both monitoring modes, so
alerts and dashboards select one instance's series the same way everywhere.
"""

from __future__ import annotations

from typing import Final, Protocol

from .naming import Names

HTTP_REQUESTS: Final = "http_requests_total"
HTTP_LATENCY_BUCKET: Final = "http_request_duration_seconds_bucket"
HTTP_LATENCY_COUNT: Final = "http_request_duration_seconds_count"
HTTP_IN_FLIGHT: Final = "http_requests_in_flight"
ML_INFERENCE_BUCKET: Final = "ml_model_inference_seconds_bucket"
CACHE_REQUESTS: Final = "cache_requests_total"  # label result: hit | stale | miss
PROCESS_RSS: Final = "process_resident_memory_bytes"
PROCESS_CPU: Final = "process_cpu_seconds_total"
REDIS_MEMORY_USED: Final = "redis_memory_used_bytes"
REDIS_MEMORY_MAX: Final = "redis_memory_max_bytes"
# Kong 3.x prometheus plugin (kong/plugins/prometheus/exporter.lua): requests by
# service/route/code/source/consumer, total latency histogram in ms by service/route.
KONG_REQUESTS: Final = "kong_http_requests_total"
KONG_LATENCY_BUCKET: Final = "kong_request_latency_ms_bucket"
KONG_LATENCY_COUNT: Final = "kong_request_latency_ms_count"
ALERTMANAGER_NOTIFICATIONS_FAILED: Final = "alertmanager_notifications_failed_total"
# rabbitmq_prometheus with per-object metrics (labels vhost, queue); alarms are 0/1 gauges.
RABBITMQ_QUEUE_READY: Final = "rabbitmq_queue_messages_ready"
RABBITMQ_QUEUE_MESSAGES: Final = "rabbitmq_queue_messages"
RABBITMQ_QUEUE_CONSUMERS: Final = "rabbitmq_queue_consumers"
RABBITMQ_MEMORY_ALARM: Final = "rabbitmq_alarms_memory_used_watermark"
RABBITMQ_DISK_ALARM: Final = "rabbitmq_alarms_free_disk_space_watermark"

INSTANCE_LABEL: Final = "indexforge_instance"
NAMESPACE_LABEL: Final = "indexforge_namespace"
COMPONENT_LABEL: Final = "component"
HTTP_COMPONENTS: Final = ("api", "ml", "excel")


def target_labels(names: Names, component: str) -> dict[str, str]:
    """Labels every scraped series of a component gets (via relabelling)."""
    return {
        NAMESPACE_LABEL: names.namespace,
        INSTANCE_LABEL: names.instance,
        COMPONENT_LABEL: component,
    }


class Scope(Protocol):
    """What selects one instance's series: `Names`, or placeholders the chart substitutes."""

    @property
    def namespace(self) -> str: ...

    @property
    def instance(self) -> str: ...


def matcher(names: Scope, **extra: str) -> str:
    """PromQL label matcher of one instance; `extra` values are regexes (=~)."""
    parts = [f'{NAMESPACE_LABEL}="{names.namespace}"', f'{INSTANCE_LABEL}="{names.instance}"']
    parts += [f'{key}=~"{value}"' for key, value in sorted(extra.items())]
    return "{" + ",".join(parts) + "}"


GROUP_BY: Final = f"{NAMESPACE_LABEL}, {INSTANCE_LABEL}, {COMPONENT_LABEL}"
