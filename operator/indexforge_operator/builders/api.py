"""API service: Deployment (HPA-scaled on CPU), Services, PDB, HPA."""

from __future__ import annotations

from ..naming import Names
from ..spec import IndexForgeSpec
from . import ports
from .common import Obj, env, meta
from .credentials import WEAVIATE_KEY_FILE, redis_password_file
from .python_service import ServiceShape, build_python_service, common_env
from .queue_env import queue_env
from .redis_replication import state_client_env

MIB = 1024 * 1024
TMP_BASE_MIB = 256  # what every service's /tmp gets


def api_env(spec: IndexForgeSpec, names: Names, *, component: str = "api") -> list[Obj]:
    """Where the API (or a worker, same image) finds its dependencies, and its cache TTLs."""
    cache = spec.api.cache
    out = [
        *common_env(spec, names, component, spec.api.log_level),
        env("INDEXFORGE_REDIS_URL", f"redis://{names.fqdn(names.component('redis-app'))}:6379/0"),
        # Job records, queued uploads, cache tags, the write lock: the noeviction Redis,
        # replicated: its primary as the sentinels name it (it moves with a failover).
        *(
            state_client_env(names, spec.redis.state.replication)
            if spec.redis.state.replication.enabled
            else [
                env(
                    "INDEXFORGE_STATE_REDIS_URL",
                    f"redis://{names.fqdn(names.component('redis-state'))}:6379/0",
                )
            ]
        ),
        # Mounted by build_python_service (state_redis): re-read per connection.
        env("INDEXFORGE_STATE_REDIS_PASSWORD_FILE", redis_password_file("redis-state")),
        env("INDEXFORGE_WEAVIATE_URL", names.url("weaviate", ports.WEAVIATE_HTTP)),
        env("INDEXFORGE_WEAVIATE_GRPC_PORT", ports.WEAVIATE_GRPC),
        # Copies of each object in the collections the API creates (QUORUM reads and writes).
        env(
            "INDEXFORGE_WEAVIATE_REPLICATION_FACTOR",
            spec.weaviate.effective_replication_factor,
        ),
        env("INDEXFORGE_ML_URL", names.url("ml", ports.ML)),
        env("INDEXFORGE_CACHE_RESPONSE_TTL_SECONDS", cache.response_ttl_seconds),
        env("INDEXFORGE_CACHE_SESSION_TTL_SECONDS", cache.session_ttl_seconds),
        env("INDEXFORGE_RATE_LIMIT_WINDOW_SECONDS", cache.rate_limit_window_seconds),
        # Mounted by build_python_service (weaviate_key): a file re-read when it changes and
        # on a 401, so a key rotation reaches the API and workers without a restart.
        env("INDEXFORGE_WEAVIATE_API_KEY_FILE", WEAVIATE_KEY_FILE),
        # Without Kong, clients call the API directly: it still sends the token to ML and
        # Excel but does not require one from its own callers.
        env("INDEXFORGE_GATEWAY_AUTH_REQUIRED", spec.gateway.enabled),
        env("INDEXFORGE_GATEWAY_CACHE_MAX_AGE_SECONDS", gateway_cache_max_age(spec)),
        env("INDEXFORGE_MAX_UPLOAD_BYTES", spec.api.uploads.max_megabytes * MIB),
        env("INDEXFORGE_MAX_CONCURRENT_UPLOADS", spec.api.uploads.max_concurrent),
    ]
    if spec.excel.enabled:
        out += [
            env("INDEXFORGE_EXCEL_URL", names.url("excel", ports.EXCEL)),
            env("INDEXFORGE_EXCEL_MAX_UPLOAD_BYTES", spec.excel.max_upload_megabytes * MIB),
            env("INDEXFORGE_EXCEL_MAX_ROWS", spec.excel.max_rows),
        ]
    return out


def tmp_size(spec: IndexForgeSpec) -> str:
    """/tmp holds every upload being read at once, plus the usual scratch space."""
    uploads = spec.api.uploads
    return f"{uploads.max_megabytes * uploads.max_concurrent + TMP_BASE_MIB}Mi"


def gateway_cache_max_age(spec: IndexForgeSpec) -> int:
    """max-age the API puts on search answers: how stale Kong's cache may be after an upload
    or delete (Kong cannot be told to purge). 0 when nothing caches at the gateway."""
    pc = spec.gateway.proxy_cache
    if not (spec.gateway.enabled and pc.enabled):
        return 0
    return min(pc.ttl_seconds, spec.api.cache.response_ttl_seconds)


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
    extra = queue_env(spec, names) if spec.messaging.enabled else []
    shape = ServiceShape(
        component="api",
        image=api.image,
        pull_policy=api.image_pull_policy,
        replicas=None if scaled else api.replicas,
        max_replicas=api.autoscaling.max_replicas if scaled else api.replicas,
        port=ports.API,
        resources=api.resources,
        budget=api.pod_disruption_budget,
        env=[*api_env(spec, names), *extra],
        redis="redis-app",
        state_redis=True,
        weaviate_key=True,
        tmp_size=tmp_size(spec),
    )
    out = build_python_service(spec, names, shape)
    if scaled:
        out.append(hpa(spec, names))
    return out
