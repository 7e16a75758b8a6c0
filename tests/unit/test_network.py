"""NetworkPolicies: default deny, DNS for everyone, and every allowed flow on both ends."""

from __future__ import annotations

from typing import Any

import pytest

from indexforge_operator.decisions import components
from indexforge_operator.naming import LABEL_COMPONENT

from .support import NAMES, build, find, make_spec

CASES = [
    ({}, False),
    ({}, True),
    ({"gateway": {"enabled": False}, "monitoring": {"enabled": False}}, False),
    ({"sentry": {"enabled": True, "dsnSecretRef": {"name": "s"}}}, False),
]


def _policies(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        o["spec"]["podSelector"]["matchLabels"].get(LABEL_COMPONENT, "*"): o["spec"]
        for o in objs
        if o["kind"] == "NetworkPolicy"
    }


def _peer(rule: dict[str, Any], key: str) -> str | None:
    """The in-instance component a rule names; None for "anywhere" and outside peers."""
    peers = rule.get(key)
    if not peers or "namespaceSelector" in peers[0]:
        return None
    component: str = peers[0]["podSelector"]["matchLabels"][LABEL_COMPONENT]
    return component


SERVING_PORTS = {"api": 8000, "ml": 8080, "excel": 8000}


@pytest.mark.parametrize(("raw", "operator_mode"), CASES)
def test_default_deny_and_one_policy_per_component(
    raw: dict[str, Any], operator_mode: bool
) -> None:
    objs = build(raw, prometheus_operator=operator_mode)
    policies = _policies(objs)
    deny = find(objs, "NetworkPolicy", NAMES.default_deny)["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny and "egress" not in deny
    expected = components(make_spec(raw), prometheus_operator=operator_mode)
    assert set(policies) - {"*"} == set(expected)


@pytest.mark.parametrize(("raw", "operator_mode"), CASES)
def test_every_pod_may_resolve_dns(raw: dict[str, Any], operator_mode: bool) -> None:
    for name, spec in _policies(build(raw, prometheus_operator=operator_mode)).items():
        if name == "*":
            continue
        dns = [
            r for r in spec["egress"] if "to" not in r and any(p["port"] == 53 for p in r["ports"])
        ]
        assert {p["protocol"] for p in dns[0]["ports"]} == {"UDP", "TCP"}, name


@pytest.mark.parametrize(("raw", "operator_mode"), CASES)
def test_in_instance_flows_are_allowed_on_both_ends(
    raw: dict[str, Any], operator_mode: bool
) -> None:
    policies = _policies(build(raw, prometheus_operator=operator_mode))
    for dest, spec in policies.items():
        for rule in spec.get("ingress", []):
            source = _peer(rule, "from")
            if source is None:
                continue
            egress = [r for r in policies[source]["egress"] if _peer(r, "to") == dest]
            assert egress, f"{source} may not send to {dest}"
            assert egress[0]["ports"] == rule["ports"]


@pytest.mark.parametrize(
    ("source", "dest", "port"),
    [
        ("gateway", "api", 8000),
        ("gateway", "ml", 8080),
        ("api", "redis-app", 6379),
        ("api", "weaviate", 50051),
        ("weaviate", "ml", 8080),
        ("ml", "redis-ml", 6379),
        ("prometheus", "redis-ml", 9121),
        ("api", "jaeger", 4318),
        ("grafana", "prometheus", 9090),
    ],
)
def test_needed_flows_exist(source: str, dest: str, port: int) -> None:
    policies = _policies(build({}))
    ports = [
        p["port"]
        for r in policies[dest]["ingress"]
        if _peer(r, "from") == source
        for p in r["ports"]
    ]
    assert port in ports


@pytest.mark.parametrize(
    ("source", "dest"),
    [("ml", "redis-app"), ("excel", "weaviate"), ("gateway", "redis-app"), ("excel", "ml")],
)
def test_unneeded_flows_are_denied(source: str, dest: str) -> None:
    policies = _policies(build({"gateway": {"rateLimiting": {"policy": "local"}}}))
    assert not [r for r in policies[dest]["ingress"] if _peer(r, "from") == source]


def test_gateway_reaches_the_app_redis_only_for_shared_rate_limits() -> None:
    def allowed(policy: str) -> bool:
        ingress = _policies(build({"gateway": {"rateLimiting": {"policy": policy}}}))["redis-app"]
        return any(_peer(r, "from") == "gateway" for r in ingress["ingress"])

    assert allowed("redis") and not allowed("local")


@pytest.mark.parametrize("operator_mode", [False, True])
def test_no_rule_opens_a_serving_port_to_anyone_but_the_gateway(operator_mode: bool) -> None:
    """The bypass of issue 10: with prometheus-operator, the scrape rule had no `from` and the
    scrape port was the serving port, so any pod anywhere could call the API around Kong."""
    policies = _policies(build({}, prometheus_operator=operator_mode))
    for component, port in SERVING_PORTS.items():
        for rule in policies[component]["ingress"]:
            opened = {p["port"] for p in rule["ports"]}
            assert "from" in rule, f"{component}: source-less rule {rule}"
            if port in opened:
                assert _peer(rule, "from") in {"gateway", "api", "weaviate"}, (component, rule)


def test_outside_prometheus_reaches_metrics_ports_only_and_selectors_are_configurable() -> None:
    raw = {
        "monitoring": {
            "serviceMonitor": {
                "scrapeFrom": {
                    "namespaceSelector": {"kubernetes.io/metadata.name": "monitoring"},
                    "podSelector": {"app": "prom"},
                }
            }
        }
    }
    policies = _policies(build(raw, prometheus_operator=True))
    outside = [
        (component, rule)
        for component, spec in policies.items()
        for rule in spec.get("ingress", [])
        if rule.get("from") and "namespaceSelector" in rule["from"][0]
    ]
    assert {c for c, _ in outside} >= {"api", "ml", "excel", "weaviate", "gateway"}
    for component, rule in outside:
        assert rule["from"] == [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                "podSelector": {"matchLabels": {"app": "prom"}},
            }
        ]
        assert all(p["port"] != SERVING_PORTS.get(component) for p in rule["ports"]), component


def test_api_open_to_clients_only_without_gateway() -> None:
    def open_ingress(raw: dict[str, Any]) -> bool:
        return any("from" not in r for r in _policies(build(raw))["api"]["ingress"])

    assert not open_ingress({})
    assert open_ingress({"gateway": {"enabled": False}})


def test_sentry_egress_only_when_enabled() -> None:
    def https_out(raw: dict[str, Any]) -> bool:
        egress = _policies(build(raw))["api"]["egress"]
        return any("to" not in r and r["ports"][0]["port"] == 443 for r in egress)

    assert not https_out({})
    assert https_out({"sentry": {"enabled": True, "dsnSecretRef": {"name": "s"}}})
