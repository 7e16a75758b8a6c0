"""The objects of a 3-node Weaviate, as the operator renders them, on the local control plane:
the API server accepts them (server-side apply), the StatefulSet starts all three pods at once
with their stable names, and the NetworkPolicy keeps the UDP gossip port. (Weaviate itself
cannot run on kwok nodes: `tests/services/test_weaviate_cluster.py` runs the real servers.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from indexforge_operator.builders import ports
from indexforge_operator.naming import LABEL_COMPONENT, Names
from indexforge_operator.spec import IndexForgeSpec
from tests.conftest import kubectl
from tests.stack.monitoring import rendered_objects
from tests.waiting import wait_for

pytestmark = pytest.mark.cluster
SPEC = {"weaviate": {"replicas": 3, "persistence": {"enabled": False}}}


def _weaviate_objects(names: Names) -> list[dict[str, Any]]:
    """Weaviate's own objects and the Secret its env reads."""
    objs = rendered_objects(IndexForgeSpec.model_validate(SPEC), names)
    return [
        o
        for o in objs
        if o["metadata"].get("labels", {}).get(LABEL_COMPONENT) == "weaviate"
        or (o["kind"], o["metadata"]["name"]) == ("Secret", names.internal_auth)
    ]


def test_three_node_weaviate_objects_apply_and_pods_start_together(
    api_client: Any, kubeconfig: Path, namespace: str
) -> None:
    names = Names("ha", namespace)
    objs = _weaviate_objects(names)
    kinds = {o["kind"] for o in objs}
    assert {"StatefulSet", "Service", "NetworkPolicy", "Secret"} <= kinds, kinds
    kubectl(
        kubeconfig, "-n", namespace, "apply", "--server-side", "--field-manager=test", "-f", "-",
        stdin=yaml.safe_dump_all(objs),
    )  # fmt: skip

    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    sts = names.component("weaviate")

    def ready() -> bool:
        status = apps.read_namespaced_stateful_set_status(sts, namespace).status
        return (status.ready_replicas or 0) == 3

    wait_for(ready, timeout=90, what="3 Weaviate pods ready")
    pods = core.list_namespaced_pod(namespace, label_selector=f"{LABEL_COMPONENT}=weaviate").items
    assert sorted(p.metadata.name for p in pods) == [f"{sts}-{i}" for i in range(3)]
    env = {e.name: e for e in pods[0].spec.containers[0].env}
    assert env["RAFT_BOOTSTRAP_EXPECT"].value == "3"
    assert env["CLUSTER_HOSTNAME"].value_from.field_ref.field_path == "metadata.name"

    headless = core.read_namespaced_service(names.headless("weaviate"), namespace)
    assert headless.spec.publish_not_ready_addresses is True
    endpoints = wait_for(
        lambda: [
            a.target_ref.name
            for s in core.read_namespaced_endpoints(names.headless("weaviate"), namespace).subsets
            or []
            for a in (s.addresses or []) + (s.not_ready_addresses or [])
        ],
        timeout=30,
        what="headless endpoints",
    )
    assert sorted(endpoints) == [f"{sts}-{i}" for i in range(3)]

    policy = client.NetworkingV1Api(api_client).read_namespaced_network_policy(sts, namespace)
    peer = [
        r
        for r in policy.spec.ingress
        if r._from and r._from[0].pod_selector.match_labels.get(LABEL_COMPONENT) == "weaviate"
    ]
    assert len(peer) == 1
    stored = {(p.port, p.protocol) for p in peer[0].ports}
    assert (ports.WEAVIATE_GOSSIP, "UDP") in stored and (ports.WEAVIATE_RAFT, "TCP") in stored
