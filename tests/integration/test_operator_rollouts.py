"""Rollouts that must finish when resources are scarce: GPU pods on the kwok GPU node.

The GPU node advertises 4 `nvidia.com/gpu`; two ML replicas asking for 2 each allocate all of
them. A config change then has to replace pods (an old one first): a surge pod would wait for
a GPU that never frees up and the rollout would never end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client

from tests.cluster.objects import GPU_COUNT, GPU_RESOURCE
from tests.operator_runner import OperatorProcess
from tests.waiting import wait_for

from .test_operator import _apply, _sample, _wait_ready

ML_REPLICAS = 2
GPUS_PER_POD = GPU_COUNT // ML_REPLICAS


def _gpus_in_use(api_client: Any) -> int:
    pods = client.CoreV1Api(api_client).list_pod_for_all_namespaces().items
    used = 0
    for pod in pods:
        if pod.status.phase in ("Succeeded", "Failed"):
            continue
        for container in pod.spec.containers:
            limits = (container.resources and container.resources.limits) or {}
            used += int(limits.get(GPU_RESOURCE, 0))
    return used


def _rolled_out(api_client: Any, namespace: str, name: str) -> bool:
    dep = client.AppsV1Api(api_client).read_namespaced_deployment(name, namespace)
    status = dep.status
    return (
        (status.observed_generation or 0) >= dep.metadata.generation
        and (status.updated_replicas or 0) == ML_REPLICAS
        and (status.ready_replicas or 0) == ML_REPLICAS
        and (status.replicas or 0) == ML_REPLICAS  # no old pod left
    )


def test_a_config_change_completes_with_every_gpu_allocated(
    api_client: Any, kubeconfig: Path, namespace: str, operator_process: OperatorProcess
) -> None:
    # Other tests' GPU pods (namespaces being deleted) must have released their GPUs.
    wait_for(lambda: _gpus_in_use(api_client) == 0, timeout=180, what="GPU node free")
    gpu = {"enabled": True, "count": GPUS_PER_POD}
    ml = {"replicas": ML_REPLICAS, "gpu": gpu, "batchSize": 16}
    _apply(kubeconfig, _sample(namespace, ml=ml))
    _wait_ready(api_client, namespace, "demo", timeout=180)
    assert _gpus_in_use(api_client) == GPU_COUNT  # every GPU is taken
    apps = client.AppsV1Api(api_client)
    before = apps.read_namespaced_deployment("demo-ml", namespace)
    strategy = before.spec.strategy
    assert (strategy.rolling_update.max_surge, strategy.rolling_update.max_unavailable) == (0, 1)

    _apply(kubeconfig, _sample(namespace, ml={**ml, "batchSize": 32}))
    wait_for(
        lambda: (
            apps.read_namespaced_deployment("demo-ml", namespace).metadata.generation
            > before.metadata.generation
        ),
        timeout=60,
        what="the operator applied the new batch size",
    )
    wait_for(lambda: _rolled_out(api_client, namespace, "demo-ml"), timeout=180,
             what="ML rollout finished with all GPUs allocated")  # fmt: skip
    after = apps.read_namespaced_deployment("demo-ml", namespace)
    env = {e.name: e.value for e in after.spec.template.spec.containers[0].env}
    assert env["INDEXFORGE_BATCH_MAX_SIZE"] == "32"
    _wait_ready(api_client, namespace, "demo", timeout=120)
