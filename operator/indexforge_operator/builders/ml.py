"""ML inference service: GPU-aware Deployment, Services, PDB.

With `ml.gpu.enabled` the pods request the GPU extended resource, tolerate the taint named
after it, honour the node selector and runtime class, and are told to use CUDA; otherwise they
run anywhere on CPU.
"""

from __future__ import annotations

from ..naming import Names
from ..spec import IndexForgeSpec
from . import ports
from .common import Obj, Rollout, env
from .python_service import ServiceShape, build_python_service, common_env


def ml_device(spec: IndexForgeSpec) -> str:
    """Device the service is told to use: no silent CPU fallback on a GPU deployment."""
    return "cuda" if spec.ml.gpu.enabled else "cpu"


def gpu_pod_fields(spec: IndexForgeSpec) -> Obj:
    """Scheduling fields of a GPU pod (empty when GPUs are off)."""
    gpu = spec.ml.gpu
    if not gpu.enabled:
        return {}
    # Device-plugin nodes are commonly tainted with the resource name; always tolerate it.
    tolerations: list[Obj] = [
        {"key": gpu.resource_name, "operator": "Exists", "effect": "NoSchedule"}
    ]
    tolerations += [t.model_dump(by_alias=True, exclude_none=True) for t in gpu.tolerations]
    fields: Obj = {"tolerations": tolerations}
    if gpu.node_selector:
        fields["nodeSelector"] = dict(gpu.node_selector)
    if gpu.runtime_class_name:
        fields["runtimeClassName"] = gpu.runtime_class_name
    return fields


def ml_rollout(spec: IndexForgeSpec) -> Rollout:
    """With whole GPUs per pod a surge pod may find no free GPU and never schedule: replace
    pods instead (one at a time; all at once for a single replica)."""
    if not spec.ml.gpu.enabled:
        return "surge"
    return "recreate" if spec.ml.replicas == 1 else "replace"


def build_ml(spec: IndexForgeSpec, names: Names) -> list[Obj]:
    ml = spec.ml
    gpu = ml.gpu
    shape = ServiceShape(
        component="ml",
        image=ml.image,
        pull_policy=ml.image_pull_policy,
        replicas=ml.replicas,
        max_replicas=ml.replicas,
        port=ports.ML,
        resources=ml.resources,
        budget=ml.pod_disruption_budget,
        env=[
            *common_env(spec, names, "ml", ml.log_level),
            env("INDEXFORGE_DEVICE", ml_device(spec)),
            env("INDEXFORGE_MODEL_NAME", ml.model),
            env("INDEXFORGE_BATCH_MAX_SIZE", ml.batch_size),
            env("INDEXFORGE_EMBEDDING_CACHE_TTL_SECONDS", ml.cache_ttl_seconds),
            env(
                "INDEXFORGE_REDIS_URL",
                f"redis://{names.fqdn(names.component('redis-ml'))}:{ports.REDIS}/0",
            ),
            env("HF_HUB_OFFLINE", "1"),  # the model ships in the image; never download
        ],
        pod_fields=gpu_pod_fields(spec),
        limits_extra={gpu.resource_name: str(gpu.count)} if gpu.enabled else {},
        slow_start=True,
        redis="redis-ml",
        rollout=ml_rollout(spec),
    )
    return build_python_service(spec, names, shape)
