"""The local control plane is a real Kubernetes: scheduling, storage, CEL, GC, PSA and RBAC.

Runs against whatever KUBECONFIG points at (kind too); otherwise against the local control
plane started by the session fixture.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.waiting import wait_for

pytestmark = pytest.mark.cluster

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def _pod(name: str, **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "registry.k8s.io/pause:3.10"}
    container.update(spec.pop("container", {}))
    return {"metadata": {"name": name}, "spec": {"containers": [container], **spec}}


def test_deployment_becomes_available_on_kwok_nodes(api_client, namespace: str) -> None:
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": _pod("x")["spec"]},
            },
        },
    )

    def available() -> bool:
        status = apps.read_namespaced_deployment_status("web", namespace).status
        return (status.available_replicas or 0) == 2

    wait_for(available, timeout=60, what="deployment web to have 2 available replicas")
    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 2
    assert {p.status.phase for p in pods} == {"Running"}
    node_labels = {n.metadata.name: n.metadata.labels for n in core.list_node().items}
    for pod in pods:
        # Untolerated GPU taint: plain pods must land on CPU nodes.
        assert "nvidia.com/gpu.present" not in node_labels[pod.spec.node_name], pod.spec.node_name


def test_statefulset_with_volume_claim_gets_bound_pvc(api_client, namespace: str) -> None:
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    labels = {"app": "db"}
    apps.create_namespaced_stateful_set(
        namespace,
        {
            "metadata": {"name": "db"},
            "spec": {
                "serviceName": "db",
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": _pod(
                        "x", container={"volumeMounts": [{"name": "data", "mountPath": "/d"}]}
                    )["spec"],
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "1Gi"}},
                        },
                    }
                ],
            },
        },
    )

    def ready() -> bool:
        status = apps.read_namespaced_stateful_set_status("db", namespace).status
        return (status.ready_replicas or 0) == 1

    wait_for(ready, timeout=60, what="statefulset db ready")
    pvc = core.read_namespaced_persistent_volume_claim("data-db-0", namespace)
    assert pvc.status.phase == "Bound"
    assert pvc.spec.storage_class_name == "standard"  # the default class was applied
    pv = core.read_persistent_volume(pvc.spec.volume_name)
    assert pv.spec.claim_ref.uid == pvc.metadata.uid


def test_gpu_pod_lands_on_gpu_node_and_oversized_request_stays_pending(
    api_client, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_pod(
        namespace,
        _pod(
            "one-gpu",
            tolerations=[GPU_TOLERATION],
            container={"resources": {"limits": {"nvidia.com/gpu": "1"}}},
        ),
    )
    core.create_namespaced_pod(
        namespace,
        _pod(
            "eight-gpus",
            tolerations=[GPU_TOLERATION],
            container={"resources": {"limits": {"nvidia.com/gpu": "8"}}},
        ),
    )

    def running(name: str) -> Any:
        pod = core.read_namespaced_pod(name, namespace)
        return pod if pod.status.phase == "Running" else None

    pod = wait_for(lambda: running("one-gpu"), timeout=60, what="GPU pod Running")
    node = core.read_node(pod.spec.node_name)
    assert node.metadata.labels.get("nvidia.com/gpu.present") == "true", node.metadata.name

    def failed_scheduling() -> Any:
        events = core.list_namespaced_event(
            namespace, field_selector="involvedObject.name=eight-gpus"
        ).items
        return [e for e in events if e.reason == "FailedScheduling"]

    events = wait_for(failed_scheduling, timeout=60, what="FailedScheduling event")
    assert "nvidia.com/gpu" in events[0].message
    assert core.read_namespaced_pod("eight-gpus", namespace).status.phase == "Pending"


CRD_YAML = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ranges.test.indexforge.io
spec:
  group: test.indexforge.io
  scope: Namespaced
  names: {plural: ranges, singular: range, kind: Range}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              min: {type: integer}
              max: {type: integer}
            x-kubernetes-validations:
            - rule: self.min <= self.max
              message: min must not exceed max
"""


def _kubectl(
    kubeconfig: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", *args],
        input=stdin, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def test_crd_cel_rule_rejects_bad_object_and_accepts_good(kubeconfig: Path, namespace: str) -> None:
    applied = _kubectl(kubeconfig, "apply", "-f", "-", stdin=CRD_YAML)
    assert applied.returncode == 0, applied.stderr
    wait_for(
        lambda: (
            _kubectl(
                kubeconfig, "wait", "--for=condition=Established", "crd/ranges.test.indexforge.io"
            ).returncode
            == 0
        ),
        timeout=30,
        what="CRD established",
    )

    def obj(name: str, lo: int, hi: int) -> str:
        return (
            f"apiVersion: test.indexforge.io/v1\nkind: Range\n"
            f"metadata: {{name: {name}, namespace: {namespace}}}\nspec: {{min: {lo}, max: {hi}}}\n"
        )

    # Discovery of a brand-new group can lag a moment behind Established.
    good = wait_for(
        lambda: (
            (r := _kubectl(kubeconfig, "apply", "-f", "-", stdin=obj("good", 1, 5))).returncode == 0
            and r
        ),
        timeout=30,
        what="good Range accepted",
    )
    assert "created" in good.stdout
    bad = _kubectl(kubeconfig, "apply", "-f", "-", stdin=obj("bad", 9, 2))
    assert bad.returncode != 0
    assert "min must not exceed max" in bad.stderr


def test_deleting_owner_garbage_collects_owned_configmap(api_client, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    core.create_namespaced_config_map(
        namespace,
        {
            "metadata": {
                "name": "owned",
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "name": "owner",
                        "uid": owner.metadata.uid,
                    }
                ],
            }
        },
    )
    core.delete_namespaced_config_map("owner", namespace)

    def gone() -> bool:
        try:
            core.read_namespaced_config_map("owned", namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for(gone, timeout=60, what="owned ConfigMap garbage-collected")


def test_restricted_namespace_rejects_privileged_pod(api_client, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    core.patch_namespace(
        namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(
            namespace, _pod("priv", container={"securityContext": {"privileged": True}})
        )
    assert err.value.status == 403
    assert "violates PodSecurity" in err.value.body
    compliant = _pod(
        "ok",
        securityContext={
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        container={
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            }
        },
    )
    assert core.create_namespaced_pod(namespace, compliant).metadata.name == "ok"


def test_service_account_with_configmap_role_cannot_list_secrets(
    api_client, kubeconfig: Path, namespace: str
) -> None:
    core, rbac = client.CoreV1Api(api_client), client.RbacAuthorizationV1Api(api_client)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "cm-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "cm-reader"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "cm-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    # A real token from the TokenRequest API: authentication and authorization both run.
    token = core.create_namespaced_service_account_token(
        "reader", namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    cfg = client.Configuration()
    cfg.host = api_client.configuration.host
    cfg.ssl_ca_cert = api_client.configuration.ssl_ca_cert
    cfg.api_key = {"authorization": f"Bearer {token}"}
    as_reader = client.CoreV1Api(client.ApiClient(cfg))

    assert as_reader.list_namespaced_config_map(namespace).items is not None
    with pytest.raises(ApiException) as err:
        as_reader.list_namespaced_secret(namespace)
    assert err.value.status == 403
    message = json.loads(err.value.body)["message"]
    assert 'cannot list resource "secrets"' in message
    assert f"system:serviceaccount:{namespace}:reader" in message
