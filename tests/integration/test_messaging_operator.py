"""The operator deploys messaging on the local control plane, and switches providers when the
RabbitMQ cluster operator's and KEDA's CRDs come and go (read from ../shared/reference).

Runs the real operator under its chart's RBAC. kwok marks pods Running and Ready, so Ready
here means "every workload the spec asks for exists and reports its replicas ready"; a real
broker is exercised in tests/services (test_rendered_rabbitmq.py, test_ingest_queue.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from tests.conftest import kubectl
from tests.operator_runner import OperatorProcess
from tests.waiting import wait_for

from .test_messaging_crds import _crds
from .test_operator import _apply, _condition, _cr, _sample, _wait_ready

MESSAGING = {"messaging": {"enabled": True, "rabbitmq": {"replicas": 3}}}


def _names(api_client: Any, namespace: str) -> dict[str, set[str]]:
    apps = client.AppsV1Api(api_client)
    scaling = client.AutoscalingV2Api(api_client)
    return {
        "statefulsets": {
            s.metadata.name for s in apps.list_namespaced_stateful_set(namespace).items
        },
        "deployments": {d.metadata.name for d in apps.list_namespaced_deployment(namespace).items},
        "hpas": {
            h.metadata.name
            for h in scaling.list_namespaced_horizontal_pod_autoscaler(namespace).items
        },
    }


def _custom(api_client: Any, namespace: str, group: str, version: str, plural: str) -> list[str]:
    items = client.CustomObjectsApi(api_client).list_namespaced_custom_object(
        group, version, namespace, plural
    )["items"]
    return [i["metadata"]["name"] for i in items]


def test_messaging_is_deployed_and_follows_the_integrations(
    api_client: Any, kubeconfig: Path, namespace: str, operator_process: OperatorProcess
) -> None:
    _apply(kubeconfig, _sample(namespace, **MESSAGING))
    cr = _wait_ready(api_client, namespace, "demo", timeout=180)
    for ctype in ("RabbitMQAvailable", "WorkersAvailable"):
        condition = _condition(cr, ctype)
        assert condition and condition["status"] == "True", cr["status"]["conditions"]
    found = _names(api_client, namespace)
    assert "demo-rabbitmq" in found["statefulsets"]
    assert "demo-worker" in found["deployments"] and "demo-worker" in found["hpas"]
    sts = client.AppsV1Api(api_client).read_namespaced_stateful_set("demo-rabbitmq", namespace)
    assert sts.status.ready_replicas == 3

    crds = _crds()
    kubectl(kubeconfig, "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(crds))
    try:
        wait_for(
            lambda: (
                _custom(api_client, namespace, "rabbitmq.com", "v1beta1", "rabbitmqclusters")
                and _custom(api_client, namespace, "keda.sh", "v1alpha1", "scaledobjects")
            ),
            timeout=90,
            what="RabbitmqCluster and ScaledObject created after the CRDs appeared",
        )
        # Ours are pruned: the cluster operator and KEDA own broker and scaling now.
        wait_for(
            lambda: (
                "demo-rabbitmq" not in _names(api_client, namespace)["statefulsets"]
                and "demo-worker" not in _names(api_client, namespace)["hpas"]
            ),
            timeout=60,
            what="built-in broker and worker HPA pruned",
        )
        assert operator_process.alive(), operator_process.log_tail()
    finally:
        kubectl(kubeconfig, "delete", "-f", "-", "--timeout=120s",
                stdin=yaml.safe_dump_all(crds), check=False)  # fmt: skip
    # Integrations gone: the operator (still alive) deploys its own broker and HPA again.
    wait_for(
        lambda: (
            "demo-rabbitmq" in _names(api_client, namespace)["statefulsets"]
            and "demo-worker" in _names(api_client, namespace)["hpas"]
        ),
        timeout=120,
        what="built-in broker and HPA back after the CRDs were deleted",
    )
    assert operator_process.alive(), operator_process.log_tail()
    _wait_ready(api_client, namespace, "demo", timeout=180)


def test_forcing_a_missing_integration_degrades_with_the_reason(
    api_client: Any, kubeconfig: Path, namespace: str, operator_process: OperatorProcess
) -> None:
    forced = {"messaging": {"enabled": True, "provider": "rabbitmqClusterOperator"}}
    _apply(kubeconfig, _sample(namespace, **forced))

    def degraded() -> dict[str, Any] | None:
        cr = _cr(api_client, namespace, "demo")
        condition = _condition(cr, "Degraded")
        return cr if condition and condition["status"] == "True" else None

    cr = wait_for(degraded, timeout=90, what="Degraded for the missing RabbitmqCluster CRD")
    condition = _condition(cr, "Degraded")
    assert condition is not None
    assert condition["reason"] == "RabbitmqClusterCRDMissing", condition
    assert "rabbitmqclusters.rabbitmq.com" in condition["message"]
