"""Messaging in the whole build: which broker and scaler, how the API and workers reach the
broker, the flows NetworkPolicies allow, and the findings for missing integrations."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from indexforge_operator.alerts import rule_groups
from indexforge_operator.builders import build_all
from indexforge_operator.decisions import check_integrations, components, resolve_integrations
from indexforge_operator.status import autoscaled_minimums

from .support import NAMES, find, make_spec, secrets_for

ON = {"messaging": {"enabled": True}}


def _build(raw: dict[str, Any], *, rabbitmq_cluster: bool = False, keda: bool = False) -> list[Any]:
    spec = make_spec(raw)
    return build_all(
        spec, NAMES, secrets=secrets_for(spec), prometheus_operator=False,
        rabbitmq_cluster=rabbitmq_cluster, keda=keda,
    )  # fmt: skip


def _kinds(objs: list[Any]) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in objs}


def _env(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def _policy(objs: list[Any], component: str) -> dict[str, Any]:
    return find(objs, "NetworkPolicy", f"demo-{component}")["spec"]


def test_off_by_default_and_nothing_of_it_is_built() -> None:
    objs = _build({})
    assert not {k for k, n in _kinds(objs) if "rabbitmq" in n or "worker" in n}
    assert "INDEXFORGE_INGEST_MODE" not in _env(find(objs, "Deployment", "demo-api"))
    assert "rabbitmq" not in components(make_spec({}), prometheus_operator=False)


def test_without_integrations_the_broker_is_ours_and_workers_scale_on_cpu() -> None:
    objs = _build(ON)
    kinds = _kinds(objs)
    assert ("StatefulSet", "demo-rabbitmq") in kinds
    assert ("HorizontalPodAutoscaler", "demo-worker") in kinds
    assert not {k for k, _ in kinds} & {"RabbitmqCluster", "ScaledObject"}
    api = _env(find(objs, "Deployment", "demo-api"))
    assert api["INDEXFORGE_INGEST_MODE"] == "queue"
    assert api["INDEXFORGE_AMQP_URL"] == (
        "amqp://$(AMQP_USERNAME):$(AMQP_PASSWORD)@demo-rabbitmq.shop.svc:5672/"
    )
    auth = find(objs, "Secret", "demo-internal-auth")["data"]
    for variable in ("AMQP_USERNAME", "AMQP_PASSWORD"):
        ref = api[variable]["secretKeyRef"]
        assert ref["name"] == "demo-internal-auth" and ref["key"] in auth


def test_with_the_cluster_operator_and_keda_both_take_over() -> None:
    objs = _build(ON, rabbitmq_cluster=True, keda=True)
    kinds = _kinds(objs)
    assert ("RabbitmqCluster", "demo-rabbitmq") in kinds
    assert ("StatefulSet", "demo-rabbitmq") not in kinds
    assert {("ScaledObject", "demo-worker"), ("TriggerAuthentication", "demo-worker")} <= kinds
    assert ("HorizontalPodAutoscaler", "demo-worker") not in kinds
    worker = _env(find(objs, "Deployment", "demo-worker"))
    assert worker["AMQP_PASSWORD"]["secretKeyRef"] == {
        "name": "demo-rabbitmq-default-user", "key": "password"
    }  # fmt: skip
    scaled = find(objs, "ScaledObject", "demo-worker")["spec"]
    (trigger,) = scaled["triggers"]
    assert trigger["metadata"]["queueName"] == "indexforge.ingest"
    assert trigger["metadata"]["value"] == "20"
    assert "@" not in trigger["metadata"]["host"]  # credentials only via the TriggerAuth


def test_a_forced_choice_beats_detection() -> None:
    raw = {"messaging": {"enabled": True, "provider": "builtin", "workers": {"scaler": "hpa"}}}
    kinds = _kinds(_build(raw, rabbitmq_cluster=True, keda=True))
    assert ("StatefulSet", "demo-rabbitmq") in kinds
    assert ("HorizontalPodAutoscaler", "demo-worker") in kinds


def test_forcing_a_missing_integration_is_reported() -> None:
    raw = {
        "messaging": {
            "enabled": True,
            "provider": "rabbitmqClusterOperator",
            "workers": {"scaler": "keda"},
        }
    }
    found = check_integrations(make_spec(raw), rabbitmq_cluster=False, keda=False)
    assert [f.reason for f in found] == ["RabbitmqClusterCRDMissing", "KedaCRDMissing"]
    assert not check_integrations(make_spec(raw), rabbitmq_cluster=True, keda=True)
    assert not check_integrations(make_spec(ON), rabbitmq_cluster=False, keda=False)


def test_scale_to_zero_needs_keda() -> None:
    with pytest.raises(ValidationError, match="needs the keda scaler"):
        make_spec({"messaging": {"workers": {"scaler": "hpa", "minReplicas": 0}}})
    # auto without KEDA: the HPA keeps one worker
    objs = _build({"messaging": {"enabled": True, "workers": {"minReplicas": 0}}})
    assert find(objs, "HorizontalPodAutoscaler", "demo-worker")["spec"]["minReplicas"] == 1
    keda = _build({"messaging": {"enabled": True, "workers": {"minReplicas": 0}}}, keda=True)
    assert autoscaled_minimums(keda)["demo-worker"] == 0


def test_the_worker_is_the_api_image_in_worker_mode_and_serves_nobody() -> None:
    objs = _build(ON)
    deployment = find(objs, "Deployment", "demo-worker")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"][0] == "indexforge-api" and container["command"][-1] == "--worker"
    assert (
        container["image"]
        == find(objs, "Deployment", "demo-api")["spec"]["template"]["spec"]["containers"][0][
            "image"
        ]
    )
    services = [o for o in objs if o["kind"] == "Service" and "worker" in o["metadata"]["name"]]
    assert [s["spec"].get("clusterIP") for s in services] == ["None"]  # headless, for scraping
    ingress = _policy(objs, "worker")["ingress"]
    assert all(p["port"] == 9102 for rule in ingress for p in rule["ports"])


def test_only_publishers_workers_and_peers_reach_the_broker() -> None:
    objs = _build(ON)
    ingress = _policy(objs, "rabbitmq")["ingress"]
    by_port: dict[int, set[str]] = {}
    for rule in ingress:
        sources = {
            peer.get("podSelector", {})
            .get("matchLabels", {})
            .get("app.kubernetes.io/component", "?")
            for peer in rule.get("from", [{}])
        }
        for port in rule["ports"]:
            by_port.setdefault(port["port"], set()).update(sources)
    assert by_port[5672] == {"api", "worker"}
    assert by_port[4369] == by_port[25672] == {"rabbitmq"}
    assert by_port[15692] == {"prometheus"}
    egress = _policy(objs, "api")["egress"]
    to_broker = [r["to"] for r in egress if any(p["port"] == 5672 for p in r["ports"])]
    assert to_broker and all(
        peers[0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "rabbitmq"
        for peers in to_broker
    )


def test_keda_may_read_queue_lengths() -> None:
    objs = _build(ON, keda=True)
    ingress = _policy(objs, "rabbitmq")["ingress"]
    keda = [r for r in ingress if "namespaceSelector" in r.get("from", [{}])[0]]
    (rule,) = keda
    assert rule["from"][0]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "keda-operator"
    }
    assert [p["port"] for p in rule["ports"]] == [5672]


def test_with_the_cluster_operator_no_policy_claims_its_pods() -> None:
    objs = _build(ON, rabbitmq_cluster=True)
    assert ("NetworkPolicy", "demo-rabbitmq") not in _kinds(objs)
    egress = _policy(objs, "worker")["egress"]
    broker = [r for r in egress if any(p["port"] == 5672 for p in r["ports"])]
    assert broker[0]["to"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/component": "rabbitmq"}}}
    ]


def test_broker_alerts_only_for_the_built_in_broker() -> None:
    def alert_names(*, rabbitmq_cluster: bool) -> set[str]:
        spec = resolve_integrations(make_spec(ON), rabbitmq_cluster=rabbitmq_cluster, keda=False)
        groups = rule_groups(spec, NAMES, standalone=True)
        return {r["alert"] for g in groups for r in g["rules"] if "alert" in r}

    assert "IndexForgeIngestDeadLetters" in alert_names(rabbitmq_cluster=False)
    assert "IndexForgeIngestDeadLetters" not in alert_names(rabbitmq_cluster=True)


def test_queue_length_hpa_reads_the_brokers_ready_messages_per_worker() -> None:
    """scaler queueLength: an HPA on an external metric a metrics adapter serves; its
    selector is the broker's per-queue series as scraped (target labels + queue)."""
    raw = {"messaging": {"enabled": True, "workers": {"scaler": "queueLength"}}}
    objs = _build(raw, keda=True)  # forced: KEDA present or not, the HPA is used
    assert ("ScaledObject", "demo-worker") not in _kinds(objs)
    (metric,) = find(objs, "HorizontalPodAutoscaler", "demo-worker")["spec"]["metrics"]
    external = metric["external"]
    assert metric["type"] == "External"
    assert external["metric"]["name"] == "rabbitmq_queue_messages_ready"
    assert external["metric"]["selector"]["matchLabels"] == {
        "indexforge_namespace": "shop",
        "indexforge_instance": "demo",
        "component": "rabbitmq",
        "queue": "indexforge.ingest",
    }
    assert external["target"] == {"type": "AverageValue", "averageValue": "20"}
    with pytest.raises(ValidationError, match="needs the keda scaler"):
        make_spec({"messaging": {"workers": {"scaler": "queueLength", "minReplicas": 0}}})
    # The alert that says the workers cannot keep up reads the same series.
    assert not check_integrations(make_spec(raw), rabbitmq_cluster=False, keda=False)
