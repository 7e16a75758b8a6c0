"""The workload shape shared by the three Python services (api, ml, excel).

Each service is a console script (`indexforge-<name> --host --port`) configured entirely by
`INDEXFORGE_*` environment variables; this module builds its ServiceAccount, Deployment,
Services and PDB, and the environment every service shares (tracing, Sentry, logging).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..naming import Names
from ..spec import IndexForgeSpec
from ..spec_common import DisruptionBudget, Resources
from . import ports
from .common import (
    Obj,
    Rollout,
    container_security,
    deployment,
    env,
    headless_service,
    http_probe,
    pdb,
    pod_security,
    pod_template,
    resources,
    service,
    service_account,
    service_port,
    tmp_mount,
    tmp_volume,
    wants_pdb,
)
from .credentials import (
    TOKENS_FILE,
    redis_password_file,
    redis_passwords_mount,
    redis_passwords_volume,
    tokens_mount,
    tokens_volume,
    weaviate_key_mount,
    weaviate_key_volume,
)

# The uid the service images run as (their Dockerfiles create this user).
SERVICE_UID = 10001
# Kong and kube-proxy keep sending to a pod for a moment after it starts terminating (Kong
# re-resolves its upstreams' DNS every KONG_DNS_TTL_SECONDS): the pod keeps serving that long
# before SIGTERM, then uvicorn finishes in-flight requests (up to 10 s, services/common/
# runner.py) within the 30 s grace period.
KONG_DNS_TTL_SECONDS = 5
DRAIN_SECONDS = KONG_DNS_TTL_SECONDS + 5
TERMINATION_GRACE_SECONDS = 30
PythonComponent = Literal["api", "ml", "excel", "worker"]


@dataclass(frozen=True)
class ServiceShape:
    """What differs between the three Python services."""

    component: PythonComponent
    image: str
    pull_policy: str
    replicas: int | None  # None: an HPA owns the count
    max_replicas: int
    port: int
    resources: Resources
    budget: DisruptionBudget
    env: Sequence[Obj]
    pod_fields: Obj = field(default_factory=dict)  # GPU scheduling for ML
    limits_extra: dict[str, str] = field(default_factory=dict)
    slow_start: bool = False  # ML loads its model before it is ready
    redis: str | None = None  # the Redis instance whose password the service needs
    state_redis: bool = False  # also the state Redis's password (the API image: api_env)
    weaviate_key: bool = False  # the Weaviate API key file (the API image: api_env)
    tmp_size: str | None = None  # /tmp sizeLimit when the default is too small (API uploads)
    rollout: Rollout = "surge"  # how the Deployment replaces pods (see common.deployment)
    program: str | None = None  # the console script; default indexforge-<component>
    extra_args: Sequence[str] = ()  # after --host/--port (the worker's --worker)
    drain: bool = True  # keep serving DRAIN_SECONDS after termination starts (not workers)
    cluster_service: bool = True  # a ClusterIP Service for callers (workers have none)


def common_env(spec: IndexForgeSpec, names: Names, component: str, log_level: str) -> list[Obj]:
    """Environment every service understands (see services/common/settings.py)."""
    out = [
        env("INDEXFORGE_SERVICE_NAME", component),
        env("INDEXFORGE_LOG_LEVEL", log_level),
        env("INDEXFORGE_LOG_JSON", True),
        env("INDEXFORGE_ENVIRONMENT", spec.sentry.environment),
        env("HOME", "/tmp"),  # libraries cache under $HOME; the root filesystem is read-only
        env("PYTHONDONTWRITEBYTECODE", "1"),
        env("INDEXFORGE_METRICS_PORT", ports.SERVICE_METRICS),
        env("INDEXFORGE_GATEWAY_TOKENS_FILE", TOKENS_FILE),
    ]
    if spec.monitoring.enabled and spec.monitoring.jaeger.enabled:
        out.append(env("INDEXFORGE_OTLP_ENDPOINT", names.url("jaeger", ports.JAEGER_OTLP_HTTP)))
    sentry = spec.sentry
    if sentry.enabled and sentry.dsn_secret_ref is not None:
        ref = sentry.dsn_secret_ref
        out += [
            {
                "name": "INDEXFORGE_SENTRY_DSN",
                "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}},
            },
            env("INDEXFORGE_SENTRY_TRACES_SAMPLE_RATE", sentry.traces_sample_rate),
            env("INDEXFORGE_SENTRY_PROFILES_SAMPLE_RATE", sentry.profiles_sample_rate),
        ]
    return out


def _env(shape: ServiceShape) -> list[Obj]:
    out = list(shape.env)
    if shape.redis is not None:
        # A file, not the value: re-read on every new connection, so a rotation needs no restart.
        out.append(env("INDEXFORGE_REDIS_PASSWORD_FILE", redis_password_file(shape.redis)))
    return out


def _redis_instances(shape: ServiceShape) -> list[str]:
    """Redis instances whose password file the pod mounts."""
    out = [shape.redis] if shape.redis is not None else []
    return [*out, "redis-state"] if shape.state_redis else out


def _container(names: Names, shape: ServiceShape) -> Obj:
    res = resources(shape.resources)
    if shape.limits_extra:
        res["limits"] = {**res.get("limits", {}), **shape.limits_extra}
    container: Obj = {
        "name": shape.component,
        "image": shape.image,
        "imagePullPolicy": shape.pull_policy,
        "command": [
            shape.program or f"indexforge-{shape.component}",
            "--host",
            "0.0.0.0",
            "--port",
            str(shape.port),
            *shape.extra_args,
        ],
        "ports": [
            {"name": "http", "containerPort": shape.port, "protocol": "TCP"},
            {"name": "metrics", "containerPort": ports.SERVICE_METRICS, "protocol": "TCP"},
        ],
        "env": _env(shape),
        "resources": res,
        "securityContext": container_security(),
        "livenessProbe": http_probe("/healthz", "http"),
        "readinessProbe": http_probe("/readyz", "http", period=5),
        "volumeMounts": [tmp_mount(), tokens_mount()],
    }
    if _redis_instances(shape):
        container["volumeMounts"].append(redis_passwords_mount())
    if shape.weaviate_key:
        container["volumeMounts"].append(weaviate_key_mount())
    if shape.slow_start:
        # Model loading can take minutes on a cold node; liveness must not kill it meanwhile.
        container["startupProbe"] = http_probe("/healthz", "http", period=10, failures=60)
    if shape.drain:
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": DRAIN_SECONDS}}}
    return container


def build_python_service(spec: IndexForgeSpec, names: Names, shape: ServiceShape) -> list[Obj]:
    """ServiceAccount, Deployment, Service, headless Service and (multi-replica) PDB."""
    component = shape.component
    volumes = [tmp_volume(shape.tmp_size), tokens_volume(names)]
    if instances := _redis_instances(shape):
        volumes.append(redis_passwords_volume(names, instances))
    if shape.weaviate_key:
        volumes.append(weaviate_key_volume(names))
    template = pod_template(
        names,
        component,
        spec=spec,
        pod_spec={
            "securityContext": pod_security(SERVICE_UID),
            "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
            **shape.pod_fields,
            "containers": [_container(names, shape)],
            "volumes": volumes,
        },
    )
    http = [service_port("http", shape.port)]
    metrics = service_port("metrics", ports.SERVICE_METRICS)
    out = [
        service_account(names, component),
        deployment(
            names, component, replicas=shape.replicas, template=template, rollout=shape.rollout
        ),
        *([service(names, component, http)] if shape.cluster_service else []),
        headless_service(names, component, [*http, metrics]),
    ]
    if wants_pdb(shape.budget, max_replicas=shape.max_replicas):
        out.append(pdb(names, component, shape.budget))
    return out
