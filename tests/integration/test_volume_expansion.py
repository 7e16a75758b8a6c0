"""Volume expansion on the local control plane: grow `persistence.size`, PVCs follow.

The harness's fake provisioner binds PVCs of its classes (no real volumes, no resizer), so a
grown PVC's `status.capacity` is set here the way a CSI resizer would. The default class
`standard` allows expansion; the test adds one that does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.cluster.objects import PROVISIONER_NAME
from tests.conftest import kubectl
from tests.waiting import wait_for

from .test_operator import _apply, _condition, _cr, _sample

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator_process")]


def _pvc(api_client: Any, namespace: str, name: str) -> Any:
    return client.CoreV1Api(api_client).read_namespaced_persistent_volume_claim(name, namespace)


def _requested(api_client: Any, namespace: str, name: str) -> str:
    return str(_pvc(api_client, namespace, name).spec.resources.requests["storage"])


def _bound(api_client: Any, namespace: str, name: str) -> bool:
    return bool(_pvc(api_client, namespace, name).status.phase == "Bound")


def _expansion(api_client: Any, namespace: str) -> dict[str, Any] | None:
    return _condition(_cr(api_client, namespace, "demo"), "VolumeExpansion")


def _with_reason(api_client: Any, namespace: str, reason: str) -> dict[str, Any] | None:
    cond = _expansion(api_client, namespace)
    return cond if cond is not None and cond["reason"] == reason else None


def _sizes(app: str, ml: str, fixed_class: str) -> dict[str, Any]:
    return {
        "redis": {
            "app": {"persistence": {"size": app}},
            "ml": {"persistence": {"size": ml, "storageClassName": fixed_class}},
        }
    }


@pytest.fixture
def fixed_class(api_client: Any, namespace: str) -> Any:
    """A StorageClass of the fake provisioner without allowVolumeExpansion."""
    storage = client.StorageV1Api(api_client)
    name = f"fixed-{namespace}"[:63]
    storage.create_storage_class(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": name},
            "provisioner": PROVISIONER_NAME,
            "volumeBindingMode": "Immediate",
        }
    )
    yield name
    storage.delete_storage_class(name)


def test_growing_expands_pvcs_recreates_the_statefulset_and_keeps_pods(
    api_client: Any, kubeconfig: Path, namespace: str, fixed_class: str
) -> None:
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    app_pvc, ml_pvc = "data-demo-redis-app-0", "data-demo-redis-ml-0"
    _apply(kubeconfig, _sample(namespace, **_sizes("1Gi", "1Gi", fixed_class)))
    for pvc in (app_pvc, ml_pvc):
        wait_for(lambda p=pvc: _bound(api_client, namespace, p), timeout=120, what=f"{pvc} Bound")
    wait_for(lambda: core.read_namespaced_pod("demo-redis-app-0", namespace), timeout=60,
             what="redis-app pod")  # fmt: skip
    sts_before = apps.read_namespaced_stateful_set("demo-redis-app", namespace).metadata.uid
    pod_before = core.read_namespaced_pod("demo-redis-app-0", namespace).metadata.uid
    ml_before = apps.read_namespaced_stateful_set("demo-redis-ml", namespace).metadata.uid
    assert _expansion(api_client, namespace) is None  # nothing to report before a change

    # Grow the app Redis (class `standard` allows it).
    _apply(kubeconfig, _sample(namespace, **_sizes("2Gi", "1Gi", fixed_class)))
    wait_for(lambda: _requested(api_client, namespace, app_pvc) == "2Gi", timeout=60,
             what="app PVC patched to 2Gi")  # fmt: skip

    def recreated() -> Any:
        sts = apps.read_namespaced_stateful_set("demo-redis-app", namespace)
        return sts if sts.metadata.uid != sts_before else None

    sts = wait_for(recreated, timeout=60, what="redis-app StatefulSet re-created")
    template = sts.spec.volume_claim_templates[0]
    assert template.spec.resources.requests["storage"] == "2Gi"

    def adopted() -> Any:
        pod = core.read_namespaced_pod("demo-redis-app-0", namespace)
        owners = [r.uid for r in pod.metadata.owner_references or []]
        return pod if owners == [sts.metadata.uid] else None

    pod = wait_for(adopted, timeout=60, what="the running pod adopted by the new StatefulSet")
    assert pod.metadata.uid == pod_before, "the pod was replaced, not kept"
    cond = wait_for(lambda: _with_reason(api_client, namespace, "ExpansionPending"),
                    timeout=30, what="ExpansionPending reported")  # fmt: skip
    assert cond["status"] == "False" and f"{app_pvc}: 1Gi of 2Gi" in cond["message"], cond

    # The resizer's part: the volume reports its new capacity.
    core.patch_namespaced_persistent_volume_claim_status(
        app_pvc, namespace, {"status": {"capacity": {"storage": "2Gi"}}}
    )
    cond = wait_for(lambda: _with_reason(api_client, namespace, "VolumesExpanded"), timeout=30,
                    what="VolumesExpanded")  # fmt: skip
    assert cond["status"] == "True"

    # Grow the ML Redis, whose class does not allow it: nothing patched, reported, announced.
    _apply(kubeconfig, _sample(namespace, **_sizes("2Gi", "2Gi", fixed_class)))
    cond = wait_for(lambda: _with_reason(api_client, namespace, "StorageClassNoExpansion"),
                    timeout=60, what="StorageClassNoExpansion")  # fmt: skip
    assert cond["status"] == "False" and f"StorageClass {fixed_class}" in cond["message"]
    events = core.list_namespaced_event(
        namespace, field_selector="reason=StorageClassNoExpansion"
    ).items
    assert events and fixed_class in events[0].message and events[0].type == "Warning"
    assert _requested(api_client, namespace, ml_pvc) == "1Gi"
    ml_sts = apps.read_namespaced_stateful_set("demo-redis-ml", namespace)
    assert ml_sts.metadata.uid == ml_before
    assert ml_sts.spec.volume_claim_templates[0].spec.resources.requests["storage"] == "1Gi"
    degraded = _condition(_cr(api_client, namespace, "demo"), "Degraded")
    assert degraded is not None and degraded["status"] == "True"


@pytest.mark.usefixtures("crd_installed")
def test_shrinking_is_refused_at_admission(kubeconfig: Path, namespace: str) -> None:
    def cr(size: str, storage: str) -> str:
        doc = _sample(namespace, weaviate={"persistence": {"size": size}})
        doc["spec"]["monitoring"] = {"prometheus": {"storageSize": storage}}
        return yaml.safe_dump(doc)

    # A stored CR is needed for a transition rule: pause it so the operator leaves it alone.
    doc = yaml.safe_load(cr("10Gi", "10Gi"))
    doc["spec"]["paused"] = True
    kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(doc))
    for size, storage, field in (
        ("9Gi", "10Gi", "persistence.size"),
        ("10Gi", "10000Mi", "prometheus.storageSize"),
    ):
        shrunk = yaml.safe_load(cr(size, storage))
        shrunk["spec"]["paused"] = True
        out = kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(shrunk), check=False)
        assert f"{field} cannot shrink (volumes can only grow)" in out, out
    grown = yaml.safe_load(cr("20Gi", "11Gi"))
    grown["spec"]["paused"] = True
    out = kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(grown))
    assert "configured" in out, out
