"""API service: Deployment (HPA-scaled on CPU), Services, PDB, HPA."""

from __future__ import annotations

from ..naming import Names
from ..spec import IndexForgeSpec
from . import ports
from .common import Obj, env, meta
from .python_service import ServiceShape, build_python_service, common_env


def api_env(spec: IndexForgeSpec, names: Names) -> list[Obj]:
    """Where the API finds its dependencies, and its cache TTLs."""
    cache = spec.api.cache
    out = [
        *common_env(spec, names, "api", spec.api.log_level),
        env("INDEXFORGE_REDIS_URL", f"redis://{names.fqdn(names.component('redis-app'))}:6379/0"),
        env("INDEXFORGE_WEAVIATE_URL", names.url("weaviate", ports.WEAVIATE_HTTP)),
        env("INDEXFORGE_WEAVIATE_GRPC_PORT", ports.WEAVIATE_GRPC),
        env("INDEXFORGE_ML_URL", names.url("ml", ports.ML)),
        env("INDEXFORGE_CACHE_RESPONSE_TTL_SECONDS", cache.response_ttl_seconds),
        env("INDEXFORGE_CACHE_SESSION_TTL_SECONDS", cache.session_ttl_seconds),
        env("INDEXFORGE_RATE_LIMIT_WINDOW_SECONDS", cache.rate_limit_window_seconds),
    ]
    if spec.excel.enabled:
        out.append(env("INDEXFORGE_EXCEL_URL", names.url("excel", ports.EXCEL)))
    return out


def hpa(spec: IndexForgeSpec, names: Names) -> Obj:
    scaling = spec.api.autoscaling
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta(names, "api", names.component("api")),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": names.component("api"),
            },
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": scaling.target_cpu_utilization_percentage,
                        },
                    },
                }
            ],
        },
    }


def build_api(spec: IndexForgeSpec, names: Names) -> list[Obj]:
    api = spec.api
    scaled = api.autoscaling.enabled
    shape = ServiceShape(
        component="api",
        image=api.image,
        pull_policy=api.image_pull_policy,
        replicas=None if scaled else api.replicas,
        max_replicas=api.autoscaling.max_replicas if scaled else api.replicas,
        port=ports.API,
        resources=api.resources,
        budget=api.pod_disruption_budget,
        env=api_env(spec, names),
    )
    out = build_python_service(spec, names, shape)
    if scaled:
        out.append(hpa(spec, names))
    return out
