"""Jaeger v2: a StatefulSet of one on a PVC, configured by a rendered collector config (the
real binary loads that config in tests/services/test_rendered_jaeger.py)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from indexforge_operator.builders import ports
from indexforge_operator.builders.common import CHECKSUM_ANNOTATION
from indexforge_operator.builders.jaeger import CONFIG_FILE, retention_hours
from indexforge_operator.builders.network import flows

from .support import NAMES, build, find, make_spec, maybe

NAME = NAMES.component("jaeger")


def _sts(raw: dict[str, Any] | None = None) -> dict[str, Any]:
    return find(build(raw), "StatefulSet", NAME)


def _container(raw: dict[str, Any] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = _sts(raw)["spec"]["template"]["spec"]["containers"][0]
    return container


def _config(raw: dict[str, Any] | None = None) -> dict[str, Any]:
    cm = find(build(raw), "ConfigMap", NAMES.config("jaeger"))
    config: dict[str, Any] = yaml.safe_load(cm["data"][CONFIG_FILE])
    return config


def test_a_statefulset_of_one_with_the_span_store_on_a_claim() -> None:
    objs = build({"monitoring": {"jaeger": {"storageSize": "20Gi"}}, "deletionPolicy": "Delete"})
    assert maybe(objs, "Deployment", NAME) is None  # v1's Deployment on an emptyDir is gone
    sts = find(objs, "StatefulSet", NAME)["spec"]
    assert sts["replicas"] == 1
    (claim,) = sts["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert sts["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
    container = sts["template"]["spec"]["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/badger"
    assert sts["serviceName"] == NAMES.headless("jaeger")
    find(objs, "Service", NAMES.headless("jaeger"))


def test_image_args_probes_and_plan_resources() -> None:
    container = _container()
    assert container["image"] == "docker.io/jaegertracing/jaeger:2.13.0"
    assert container["args"] == [f"--config=/etc/jaeger/{CONFIG_FILE}"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/status", "port": "health"}
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert named["health"] == ports.JAEGER_HEALTH
    # The plan: Jaeger 1 CPU / 2 Gi limit, 1 Gi reserved.
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    assert container["resources"]["requests"]["memory"] == "1Gi"


@pytest.mark.parametrize(("retention", "ttl"), [("7d", "168h"), ("36h", "36h"), ("2w", "336h")])
def test_retention_is_badgers_span_ttl(retention: str, ttl: str) -> None:
    config = _config({"monitoring": {"jaeger": {"retention": retention}}})
    (backend,) = config["extensions"]["jaeger_storage"]["backends"].values()
    assert backend["badger"]["ttl"] == {"spans": ttl}
    assert backend["badger"]["ephemeral"] is False
    assert retention_hours(retention) == int(ttl.removesuffix("h"))


def test_config_listens_on_the_declared_ports() -> None:
    config = _config()
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == f"0.0.0.0:{ports.JAEGER_OTLP_GRPC}"
    assert protocols["http"]["endpoint"] == f"0.0.0.0:{ports.JAEGER_OTLP_HTTP}"
    query = config["extensions"]["jaeger_query"]
    assert query["http"]["endpoint"] == f"0.0.0.0:{ports.JAEGER_UI}"
    health = config["extensions"]["healthcheckv2"]["http"]
    assert health["endpoint"] == f"0.0.0.0:{ports.JAEGER_HEALTH}"
    assert health["status"]["path"] == "/status"
    declared = {p["containerPort"] for p in _container()["ports"]}
    assert {ports.JAEGER_OTLP_GRPC, ports.JAEGER_OTLP_HTTP, ports.JAEGER_UI} <= declared


def test_checksum_follows_the_config() -> None:
    def checksum(raw: dict[str, Any] | None = None) -> str:
        value: str = _sts(raw)["spec"]["template"]["metadata"]["annotations"][CHECKSUM_ANNOTATION]
        return value

    assert checksum({"monitoring": {"jaeger": {"retention": "3d"}}}) != checksum()
    assert checksum({"api": {"replicas": 5}}) == checksum()


def test_network_flows_into_jaeger_reach_declared_ports() -> None:
    declared = {p["containerPort"] for p in _container()["ports"]}
    into = [f for f in flows(make_spec(), prometheus_operator=False) if f.dest == "jaeger"]
    assert into, "services must reach Jaeger"
    assert all(set(f.ports) <= declared for f in into)
    # OTLP from every Python service; the UI for people and Grafana.
    otlp = {f.source for f in into if ports.JAEGER_OTLP_HTTP in f.ports}
    assert {"api", "ml", "excel"} <= otlp


@pytest.mark.parametrize("operator_mode", [False, True])
def test_the_collectors_own_metrics_are_scraped(operator_mode: bool) -> None:
    """Spans Jaeger refuses or drops show up only in its metrics (port 8888): scraped in both
    monitoring modes, and the NetworkPolicy lets the scraper in on that port only."""
    objs = build({}, prometheus_operator=operator_mode)
    headless = find(objs, "Service", NAMES.headless("jaeger"))
    assert headless["metadata"]["labels"].get("indexforge.io/scrape") == "true"
    if operator_mode:
        monitor = find(objs, "ServiceMonitor", NAMES.component("jaeger"))
        assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    else:
        config = yaml.safe_load(
            find(objs, "ConfigMap", NAMES.config("prometheus"))["data"]["prometheus.yml"]
        )
        jobs = {j["job_name"]: j for j in config["scrape_configs"]}
        sd = jobs[NAMES.component("jaeger")]["dns_sd_configs"][0]
        assert sd["port"] == ports.JAEGER_METRICS
    policy = find(objs, "NetworkPolicy", NAMES.component("jaeger"))
    scraped = [r for r in policy["spec"]["ingress"]
               if any(p["port"] == ports.JAEGER_METRICS for p in r["ports"])]  # fmt: skip
    assert scraped and all("from" in r for r in scraped)
