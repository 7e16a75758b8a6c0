"""One table of specs admission must reject (with the rule's message) or accept.

The same cases go through the spec model (tests/unit/test_spec.py: what `indexforge render`
and the operator do), the API server with the generated CRD
(tests/integration/test_crd_admission.py) and, where a Helm template can tell, the static
chart (tests/charts/test_charts.py). A case that passes one layer and fails another is a drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from indexforge_operator.spec_checks import IP_OR_CIDR_MESSAGE

QUALIFIED = "must be a qualified name"


@dataclass(frozen=True)
class Case:
    id: str
    spec: dict[str, Any]
    message: str = ""  # for bad cases: text every layer's error contains
    # The static chart checks IPv6 addresses only by their prefix length (no isIP() in Helm).
    helm: bool = True


def _ips(*entries: str, list_name: str = "allow") -> dict[str, Any]:
    return {"gateway": {"ipRestriction": {"enabled": True, list_name: list(entries)}}}


def _node_selector(labels: dict[str, str]) -> dict[str, Any]:
    return {"ml": {"gpu": {"nodeSelector": labels}}}


def _resources(component: dict[str, Any], requests: dict[str, str], limits: dict[str, str]) -> Any:
    """`component` is the path as nested dicts ending in {} where resources go."""
    out: dict[str, Any] = {}
    node, target = component, out
    while node:
        ((key, node),) = node.items()
        target[key] = {}
        target = target[key]
    target["resources"] = {"requests": requests, "limits": limits}
    return out


def _over(key: str, request: str, limit: str) -> str:
    return (
        f"resources.requests.{key} ({request}) must be less than or equal to "
        f"resources.limits.{key} ({limit})"
    )


# A DNS subdomain of exactly 253 characters (the longest allowed prefix).
PREFIX_253 = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])

BAD: list[Case] = [
    # IPs and CIDRs (Kong's ip-restriction takes both)
    Case("cidr prefix over 32", _ips("10.0.0.0/33"), IP_OR_CIDR_MESSAGE),
    Case("octet over 255", _ips("999.1.1.1"), IP_OR_CIDR_MESSAGE),
    Case("octet 256 in deny", _ips("10.0.0.256", list_name="deny"), IP_OR_CIDR_MESSAGE),
    Case("leading zero in prefix", _ips("10.0.0.0/08"), IP_OR_CIDR_MESSAGE),
    Case("leading zero in octet", _ips("010.0.0.1"), IP_OR_CIDR_MESSAGE),
    Case("ipv6 prefix over 128", _ips("2001:db8::/129"), IP_OR_CIDR_MESSAGE),
    Case("malformed ipv6", _ips("1:::2"), IP_OR_CIDR_MESSAGE, helm=False),
    Case("ipv4-mapped ipv6", _ips("::ffff:10.0.0.1"), IP_OR_CIDR_MESSAGE, helm=False),
    Case("second entry bad", _ips("10.0.0.0/8", "1.2.3"), IP_OR_CIDR_MESSAGE),
    # Label and resource names (qualified names)
    Case("node selector key with a space", _node_selector({"bad key": "x"}), QUALIFIED),
    Case("node selector key with two slashes", _node_selector({"a/b/c": "x"}), QUALIFIED),
    Case("node selector key starting with '-'", _node_selector({"-gpu": "x"}), QUALIFIED),
    Case("uppercase prefix", _node_selector({"Example.com/gpu": "x"}), QUALIFIED),
    Case("empty prefix", _node_selector({"/gpu": "x"}), QUALIFIED),
    Case("name over 63", _node_selector({"n" * 64: "x"}), QUALIFIED),
    Case("prefix over 253", _node_selector({f"{PREFIX_253}e/gpu": "x"}), QUALIFIED),
    Case(
        "service monitor label key",
        {"monitoring": {"serviceMonitor": {"labels": {"release name": "x"}}}},
        QUALIFIED,
    ),
    Case("toleration key", {"ml": {"gpu": {"tolerations": [{"key": "bad key"}]}}}, QUALIFIED),
    Case(
        "resource name",
        _resources({"api": {}}, {"bad cpu": "1"}, {"cpu": "1"}),
        QUALIFIED,
    ),
    # Requests above limits, in every resources block
    Case("api cpu", _resources({"api": {}}, {"cpu": "2"}, {"cpu": "1"}), _over("cpu", "2", "1")),
    Case(
        "ml memory",
        _resources({"ml": {}}, {"memory": "4Gi"}, {"memory": "3Gi"}),
        _over("memory", "4Gi", "3Gi"),
    ),
    Case(
        "milli cpu just above",
        _resources({"redis": {"app": {}}}, {"cpu": "1001m"}, {"cpu": "1"}),
        _over("cpu", "1001m", "1"),
    ),
    Case(
        "Gi above M",
        _resources({"monitoring": {"grafana": {}}}, {"memory": "1Gi"}, {"memory": "1000M"}),
        _over("memory", "1Gi", "1000M"),
    ),
    Case(
        "nested exporter",
        _resources({"redis": {"ml": {"exporter": {}}}}, {"cpu": "200m"}, {"cpu": "0.1"}),
        _over("cpu", "200m", "0.1"),
    ),
    Case(
        "gateway gpu-style extended resource",
        _resources({"gateway": {}}, {"example.com/foo": "2"}, {"example.com/foo": "1"}),
        _over("example.com/foo", "2", "1"),
    ),
    Case(
        "two resources over, the first by name is named",
        _resources({"weaviate": {}}, {"memory": "8Gi", "cpu": "3"}, {"memory": "4Gi", "cpu": "2"}),
        _over("cpu", "3", "2"),
    ),
    # Weaviate: as many copies as nodes at most
    Case(
        "weaviate factor above replicas",
        {"weaviate": {"replicas": 3, "replicationFactor": 4}},
        "weaviate.replicationFactor must be at most weaviate.replicas",
    ),
    # The replicated state Redis (checked whether enabled or not)
    Case(
        "even sentinels",
        {"redis": {"state": {"replication": {"sentinels": 4}}}},
        "redis.state.replication.sentinels must be odd",
    ),
    Case(
        "quorum above sentinels",
        {"redis": {"state": {"replication": {"sentinels": 3, "quorum": 4}}}},
        "redis.state.replication.quorum must be at most sentinels",
    ),
    Case(
        "wait for every redis pod",
        {"redis": {"state": {"replication": {"replicas": 2, "waitReplicas": 2}}}},
        "redis.state.replication.waitReplicas must be less than replicas",
    ),
    # Messaging (checked whether enabled or not, as the CRD's rules are)
    Case(
        "even rabbitmq replicas",
        {"messaging": {"rabbitmq": {"replicas": 2}}},
        "rabbitmq.replicas must be odd",
    ),
    Case(
        "workers min over max",
        {"messaging": {"workers": {"minReplicas": 5, "maxReplicas": 2}}},
        "workers.minReplicas must be less than or equal to maxReplicas",
    ),
    Case(
        "workers scale to zero with an hpa",
        {"messaging": {"enabled": True, "workers": {"scaler": "hpa", "minReplicas": 0}}},
        "workers.minReplicas 0 needs the keda scaler (an HPA cannot scale to zero)",
    ),
    Case(
        "workers scale to zero with a queue-length hpa",
        {"messaging": {"enabled": True, "workers": {"scaler": "queueLength", "minReplicas": 0}}},
        "workers.minReplicas 0 needs the keda scaler (an HPA cannot scale to zero)",
    ),
]

GOOD: list[Case] = [
    Case(
        "sentinel quorum equal to sentinels, no wait",
        {
            "redis": {
                "state": {
                    "replication": {
                        "enabled": True,
                        "replicas": 2,
                        "sentinels": 5,
                        "quorum": 5,
                        "waitReplicas": 0,
                    }
                }
            }
        },
    ),
    Case(
        "weaviate factor equal to replicas", {"weaviate": {"replicas": 5, "replicationFactor": 5}}
    ),
    # `auto` may resolve to an HPA (no KEDA): the rule judges the spec as written, and the
    # HPA then keeps one worker.
    Case("workers scale to zero with auto", {"messaging": {"workers": {"minReplicas": 0}}}),
    Case(
        "messaging with five broker nodes",
        {"messaging": {"enabled": True, "rabbitmq": {"replicas": 5}}},
    ),
    Case("cidrs and addresses", _ips("10.0.0.0/8", "192.168.1.1", "0.0.0.0/0", "192.168.1.1/24")),
    Case("ipv6", _ips("::1", "2001:db8::/32", "fe80::1", list_name="deny")),
    Case(
        "qualified names",
        _node_selector(
            {
                "kubernetes.io/arch": "amd64",
                "node.example.com/pool": "gpu_A-1.x",
                "simple": "",
                f"{PREFIX_253}/{'n' * 63}": "v",
            }
        ),
    ),
    Case("toleration key", {"ml": {"gpu": {"tolerations": [{"key": "nvidia.com/gpu"}]}}}),
    Case(
        "equal in other units",
        _resources(
            {"api": {}}, {"cpu": "1000m", "memory": "1Gi"}, {"cpu": "1", "memory": "1024Mi"}
        ),
    ),
    Case("request without its limit", _resources({"ml": {}}, {"cpu": "4"}, {"memory": "4Gi"})),
    Case("limits only", {"excel": {"resources": {"limits": {"cpu": "3"}}}}),
    Case("requests only", {"excel": {"resources": {"requests": {"cpu": "3"}}}}),
]
