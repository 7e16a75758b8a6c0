"""Replicas spread over nodes and zones on the local control plane (kwok nodes in two zones).

Two schedulable CPU nodes (zone-a, zone-b) and one tainted GPU node (zone-a): every component
with up to two replicas must have them on different nodes; three broker nodes must use both
CPU nodes (never three on one), and the tainted GPU node, which they may not use, must not
count as an empty domain that blocks them.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.cluster.objects import CPU_NODES, ZONE_LABEL, ZONES
from tests.operator_runner import OperatorProcess
from tests.waiting import wait_for

from .test_operator import _apply, _sample, _wait_ready

SPEC = {
    "api": {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 4}},
    "gateway": {"replicas": 2},
    "messaging": {"enabled": True, "rabbitmq": {"replicas": 3}},
}


def _nodes_by_component(api_client: Any, namespace: str) -> dict[str, list[str]]:
    pods = client.CoreV1Api(api_client).list_namespaced_pod(namespace).items
    out: dict[str, list[str]] = {}
    for pod in pods:
        if pod.metadata.deletion_timestamp or not pod.spec.node_name:
            continue
        component = (pod.metadata.labels or {}).get("app.kubernetes.io/component", "?")
        out.setdefault(component, []).append(pod.spec.node_name)
    return out


def test_replicas_land_on_different_nodes_and_zones(
    api_client: Any, kubeconfig: Path, namespace: str, operator_process: OperatorProcess
) -> None:
    _apply(kubeconfig, _sample(namespace, **SPEC))
    _wait_ready(api_client, namespace, "demo", timeout=180)
    placed = wait_for(
        lambda: (
            (found := _nodes_by_component(api_client, namespace))
            and len(found.get("rabbitmq", [])) == 3
            and found
        ),
        timeout=60,
        what="broker pods placed",
    )
    for component in ("api", "gateway"):
        nodes = placed[component]
        assert len(nodes) == 2 and len(set(nodes)) == 2, (component, nodes)
        assert {ZONES[n] for n in nodes} == {"zone-a", "zone-b"}, (component, nodes)
    brokers = Counter(placed["rabbitmq"])
    assert set(brokers) == set(CPU_NODES) and max(brokers.values()) == 2, brokers
    labels = {
        n.metadata.name: n.metadata.labels.get(ZONE_LABEL)
        for n in client.CoreV1Api(api_client).list_node().items
    }
    assert labels == ZONES  # the harness labels the zones the assertions rely on
