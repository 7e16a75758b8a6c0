"""The replicated state Redis's objects, as the operator renders them, on the local control
plane: the API server accepts them (server-side apply), both StatefulSets start every pod at
once with the init step and its env, the headless Services list not-ready pods, the PDBs and
the Sentinel NetworkPolicy are stored. (Redis cannot run on kwok nodes:
`tests/services/test_state_redis_replication.py` runs the rendered files on real servers.)
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
SPEC = {
    "redis": {
        "state": {
            "persistence": {"enabled": False},
            "replication": {"enabled": True, "replicas": 3, "sentinels": 3},
        }
    }
}
OURS = ("redis-state", "sentinel")


def _objects(names: Names) -> list[dict[str, Any]]:
    """The state Redis's and the sentinels' objects and the Secret their env reads."""
    objs = rendered_objects(IndexForgeSpec.model_validate(SPEC), names)
    return [
        o
        for o in objs
        if o["metadata"].get("labels", {}).get(LABEL_COMPONENT) in OURS
        or (o["kind"], o["metadata"]["name"]) == ("Secret", names.internal_auth)
    ]


def _endpoint_pods(core: client.CoreV1Api, service: str, namespace: str) -> list[str]:
    subsets = core.read_namespaced_endpoints(service, namespace).subsets or []
    return sorted(
        a.target_ref.name
        for s in subsets
        for a in (s.addresses or []) + (s.not_ready_addresses or [])
    )


def test_replicated_state_redis_objects_apply_and_pods_start(
    api_client: Any, kubeconfig: Path, namespace: str
) -> None:
    names = Names("rep", namespace)
    objs = _objects(names)
    kinds = {(o["kind"], o["metadata"].get("labels", {}).get(LABEL_COMPONENT)) for o in objs}
    for component in OURS:
        for kind in ("StatefulSet", "Service", "ConfigMap", "PodDisruptionBudget", "NetworkPolicy"):
            assert (kind, component) in kinds, (kind, component)
    kubectl(
        kubeconfig, "-n", namespace, "apply", "--server-side", "--field-manager=test", "-f", "-",
        stdin=yaml.safe_dump_all(objs),
    )  # fmt: skip

    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    for component in OURS:
        sts = names.component(component)  # type: ignore[arg-type]

        def ready(sts: str = sts) -> bool:
            status = apps.read_namespaced_stateful_set_status(sts, namespace).status
            return (status.ready_replicas or 0) == 3

        wait_for(ready, timeout=90, what=f"3 {component} pods ready")
        pods = core.list_namespaced_pod(
            namespace, label_selector=f"{LABEL_COMPONENT}={component}"
        ).items
        assert sorted(p.metadata.name for p in pods) == [f"{sts}-{i}" for i in range(3)]
        (init,) = pods[0].spec.init_containers
        env = {e.name: e for e in init.env}
        assert env["POD_NAME"].value_from.field_ref.field_path == "metadata.name"
        headless = names.headless(component)  # type: ignore[arg-type]
        assert env["ANNOUNCE_HOST"].value == f"$(POD_NAME).{headless}.{namespace}.svc"
        assert env["REDISCLI_AUTH"].value_from.secret_key_ref.name == names.internal_auth
        assert core.read_namespaced_service(headless, namespace).spec.publish_not_ready_addresses
        endpoints = wait_for(
            lambda h=headless: _endpoint_pods(core, h, namespace),
            timeout=30,
            what=f"{component} headless endpoints",
        )
        assert endpoints == [f"{sts}-{i}" for i in range(3)]
        pdb = client.PolicyV1Api(api_client).read_namespaced_pod_disruption_budget(sts, namespace)
        assert pdb.spec.max_unavailable == 1

    policy = client.NetworkingV1Api(api_client).read_namespaced_network_policy(
        names.component("sentinel"), namespace
    )
    sources = {
        r._from[0].pod_selector.match_labels.get(LABEL_COMPONENT): {p.port for p in r.ports}
        for r in policy.spec.ingress
        if r._from and r._from[0].pod_selector and r._from[0].namespace_selector is None
    }
    assert sources["sentinel"] == {ports.SENTINEL}
    assert sources["redis-state"] == {ports.SENTINEL}
    assert sources["api"] == {ports.SENTINEL}
