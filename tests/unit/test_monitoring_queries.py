"""Every PromQL expression of the rules and dashboards parses (real promtool) and names only
metrics that something we deploy exports, or that our recording rules record."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from indexforge_operator.alerts import rule_file
from indexforge_operator.builders.dashboards import dashboards, uid_digest
from indexforge_services.api.metrics import ApiMetrics
from indexforge_services.common.cache import CacheMetrics
from indexforge_services.common.gateway_auth import rejected_counter
from indexforge_services.common.metrics import HttpMetrics
from indexforge_services.excel.metrics import ExcelMetrics
from indexforge_services.ml.metrics import MLMetrics

from .support import NAMES, make_spec
from .test_alerts import PROMTOOL, needs_promtool

# Exporters we deploy but do not write, each with the source its names were read from.
KONG: Final = {  # Kong 3.x kong/plugins/prometheus/exporter.lua (prefix "kong_")
    "kong_http_requests_total",
    *(f"kong_{h}_{s}" for h in ("request_latency_ms", "kong_latency_ms", "upstream_latency_ms")
      for s in ("bucket", "count", "sum")),
    "kong_bandwidth_bytes",
    "kong_nginx_connections_total",
    "kong_nginx_requests_total",
    "kong_datastore_reachable",
    "kong_upstream_target_health",
}  # fmt: skip
REDIS_EXPORTER: Final = {  # oliver006/redis_exporter exporter/exporter.go (metric maps)
    "redis_up",
    "redis_memory_used_bytes",
    "redis_memory_max_bytes",
    "redis_evicted_keys_total",
    "redis_expired_keys_total",
    "redis_connected_clients",
    "redis_keyspace_hits_total",
    "redis_keyspace_misses_total",
    "redis_commands_processed_total",
    "redis_db_keys",
}
WEAVIATE: Final = {  # weaviate v1.35.2 usecases/monitoring/prometheus.go; Go default registry
    "object_count",
    "requests_total",
    "vector_index_size",
    *(f"queries_durations_ms_{s}" for s in ("bucket", "count", "sum")),
    *(f"weaviate_http_request_duration_seconds_{s}" for s in ("bucket", "count", "sum")),
    "weaviate_http_requests_inflight",
    "go_memstats_heap_inuse_bytes",
    "go_goroutines",
    "process_resident_memory_bytes",
    "process_cpu_seconds_total",
}
ALERTMANAGER: Final = {  # prometheus/alertmanager v0.28 notify/notify.go
    "alertmanager_notifications_total",
    "alertmanager_notifications_failed_total",
    "alertmanager_notification_requests_total",
    "alertmanager_notification_requests_failed_total",
}
# rabbitmq_prometheus with per-object metrics, as a real 3.10 node exposes them
# (tests/services/test_rendered_rabbitmq.py checks the per-queue series on one).
RABBITMQ: Final = {
    "rabbitmq_queue_messages",
    "rabbitmq_queue_messages_ready",
    "rabbitmq_queue_messages_unacked",
    "rabbitmq_queue_consumers",
    "rabbitmq_alarms_memory_used_watermark",
    "rabbitmq_alarms_free_disk_space_watermark",
}
PROMETHEUS: Final = {"up"}  # written by Prometheus for every scrape
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{")


def _names(family: Metric) -> set[str]:
    """Series names of a family as exposed (prometheus_client strips _total from counters)."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_count", "_sum"),
        "summary": ("_count", "_sum"),
        "info": ("_info",),
    }.get(family.type, ("",))
    return {family.name + s for s in suffixes}


def services_metrics() -> set[str]:
    """Everything our services' registries can export (api, ml, excel, shared parts)."""
    registry = CollectorRegistry()
    HttpMetrics(registry)
    ApiMetrics(registry)
    MLMetrics(registry, model="m", device="cpu")
    ExcelMetrics(registry)
    CacheMetrics(registry, "c")
    rejected_counter(registry)
    return {name for family in registry.collect() for name in _names(family)}


def _specs() -> list[Any]:
    return [
        make_spec({}),
        make_spec({"monitoring": {"alertmanager": {"enabled": True}}}),
        make_spec({"messaging": {"enabled": True}}),
    ]


def rule_exprs() -> Iterator[tuple[str, str]]:
    for spec in _specs():
        for group in rule_file(spec, NAMES)["groups"]:
            for rule in group["rules"]:
                yield rule.get("alert") or rule["record"], rule["expr"]


def recorded() -> set[str]:
    return {
        r["record"]
        for spec in _specs()
        for g in rule_file(spec, NAMES)["groups"]
        for r in g["rules"]
        if "record" in r
    }


def dashboard_exprs() -> Iterator[tuple[str, str]]:
    for key, board in dashboards(NAMES, digest=uid_digest(NAMES)).items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                yield f"{key}/{panel['title']}/{target['refId']}", target["expr"]


def test_every_query_names_an_exported_metric() -> None:
    known = services_metrics() | KONG | REDIS_EXPORTER | WEAVIATE | ALERTMANAGER | PROMETHEUS
    known |= RABBITMQ
    known |= recorded()
    unknown = {
        where: sorted(set(SELECTOR.findall(expr)) - known)
        for where, expr in [*rule_exprs(), *dashboard_exprs()]
        if set(SELECTOR.findall(expr)) - known
    }
    assert not unknown
    # The check sees what it should: a typo is caught.
    assert set(SELECTOR.findall('rate(http_request_total{a="b"}[5m])')) - known


def test_services_export_what_the_slos_and_dashboards_need() -> None:
    names = services_metrics()
    assert {
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_requests_in_flight",
        "ml_batch_size_bucket",
        "ml_device_info",
        "api_upload_bytes_total",
        "api_ingest_jobs_total",
    } <= names


def _promtool_check(tmp_path: Path, groups: list[dict[str, Any]]) -> None:
    assert PROMTOOL is not None
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": groups}))
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_rule_files_pass_promtool_check(tmp_path: Path) -> None:
    for spec in _specs():
        _promtool_check(tmp_path, rule_file(spec, NAMES)["groups"])


@needs_promtool
def test_dashboard_queries_parse(tmp_path: Path) -> None:
    """promtool checks rule files only: each dashboard query becomes a recording rule."""
    rules = [
        {"record": f"check:dashboard_query_{i}", "expr": expr}
        for i, (_, expr) in enumerate(dashboard_exprs())
    ]
    _promtool_check(tmp_path, [{"name": "dashboard-queries", "rules": rules}])


@needs_promtool
def test_a_broken_query_fails_the_check(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="parse error"):
        _promtool_check(tmp_path, [{"name": "x", "rules": [{"record": "a:b", "expr": "sum(("}]}])
