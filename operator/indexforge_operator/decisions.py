"""Decisions about a spec, as pure functions (reason, message) in the style of policies.

The schema checks single fields and simple cross-field rules; what needs arithmetic across
parts, cluster facts (node capacity, scheduler events, Secrets) or the monitoring mode is
decided here. Each check returns a `Finding` (CamelCase reason + message for a condition or
event) or None. The reconciler gathers the facts; these functions only judge them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from .naming import Component
from .quantity import parse_quantity, parse_redis_memory
from .spec import IndexForgeSpec, RedisInstance
from .status_schema import MonitoringMode


class Finding(NamedTuple):
    """Something users can act on: a condition reason and a clear message."""

    reason: str
    message: str


def monitoring_mode(spec: IndexForgeSpec, *, prometheus_operator: bool) -> MonitoringMode:
    """PrometheusOperator when its CRDs exist, else the standalone Prometheus (if enabled)."""
    if not spec.monitoring.enabled:
        return "Disabled"
    if prometheus_operator:
        return "PrometheusOperator"
    return "Standalone" if spec.monitoring.prometheus.enabled else "Disabled"


def mode_message(mode: MonitoringMode) -> Finding:
    """Reason/message for the condition saying which monitoring mode is active."""
    messages = {
        "PrometheusOperator": "ServiceMonitors and a PrometheusRule are used "
        "(prometheus-operator CRDs found)",
        "Standalone": "the stack's own Prometheus scrapes the components "
        "(no prometheus-operator CRDs found)",
        "Disabled": "metrics are not collected (monitoring or prometheus disabled)",
    }
    return Finding(f"Monitoring{mode}", messages[mode])


def resolve_integrations(
    spec: IndexForgeSpec,
    *,
    rabbitmq_cluster: bool,
    keda: bool,
    rabbitmq_topology: bool = False,
    istio: bool = False,
) -> IndexForgeSpec:
    """`spec` with every `auto` choice of an optional integration made from the cluster's CRDs:
    builders then read one concrete value instead of taking flags.

    Broker: the RabbitMQ cluster operator when its CRD exists (`rabbitmq_cluster`), else the
    operator's own StatefulSet. Topology: the messaging topology operator's objects when its
    CRDs exist (`rabbitmq_topology`) and the broker is a RabbitmqCluster, else the services
    declare it. Worker scaler: KEDA when its CRDs exist, else an HPA. Mesh: istio when Istio's
    CRDs exist (`istio`), else none."""
    messaging = spec.messaging
    provider = messaging.provider
    if provider == "auto":
        provider = "rabbitmqClusterOperator" if rabbitmq_cluster else "builtin"
    topology = messaging.topology
    if topology == "auto":
        with_operator = rabbitmq_topology and provider == "rabbitmqClusterOperator"
        topology = "topologyOperator" if with_operator else "services"
    scaler = messaging.workers.scaler
    if scaler == "auto":
        scaler = "keda" if keda else "hpa"
    workers = messaging.workers.model_copy(update={"scaler": scaler})
    resolved = messaging.model_copy(
        update={"provider": provider, "topology": topology, "workers": workers}
    )
    mesh = spec.mesh
    if mesh.mode == "auto":
        mesh = mesh.model_copy(update={"mode": "istio" if istio else "none"})
    return spec.model_copy(update={"messaging": resolved, "mesh": mesh})


def uses_istio(spec: IndexForgeSpec) -> bool:
    """Mesh mode is Istio (after `resolve_integrations`)."""
    return spec.mesh.mode == "istio"


def uses_cluster_operator(spec: IndexForgeSpec) -> bool:
    """The broker is a RabbitmqCluster (after `resolve_integrations`)."""
    return spec.messaging.enabled and spec.messaging.provider == "rabbitmqClusterOperator"


def uses_topology_operator(spec: IndexForgeSpec) -> bool:
    """The topology operator's objects and application user are used (after
    `resolve_integrations`; only with a RabbitmqCluster, see check_integrations)."""
    return uses_cluster_operator(spec) and spec.messaging.topology == "topologyOperator"


def check_integrations(
    spec: IndexForgeSpec,
    *,
    rabbitmq_cluster: bool,
    keda: bool,
    rabbitmq_topology: bool = False,
    istio: bool = False,
    external_secrets: bool = True,
) -> list[Finding]:
    """An integration the spec forces whose CRDs are not installed cannot be created."""
    found = []
    if spec.secrets.provider == "externalSecrets" and not external_secrets:
        found.append(
            Finding(
                "ExternalSecretsCRDMissing",
                "secrets.provider is externalSecrets but the externalsecrets.external-secrets.io "
                "CRD is not installed: install External Secrets Operator or use another provider "
                "(no credential Secret is created meanwhile)",
            )
        )
    if spec.mesh.mode == "istio" and not istio:
        found.append(
            Finding(
                "IstioCRDMissing",
                "mesh.mode is istio but the peerauthentications.security.istio.io CRD is not "
                "installed: install Istio or set mesh.mode auto",
            )
        )
    if not spec.messaging.enabled:
        return found
    if spec.messaging.topology == "topologyOperator":
        if not rabbitmq_topology:
            found.append(
                Finding(
                    "RabbitmqTopologyCRDMissing",
                    "messaging.topology is topologyOperator but the queues.rabbitmq.com CRD is "
                    "not installed: install the RabbitMQ messaging topology operator or set "
                    "topology auto",
                )
            )
        if spec.messaging.provider == "builtin" or (
            spec.messaging.provider == "auto" and not rabbitmq_cluster
        ):
            found.append(
                Finding(
                    "RabbitmqTopologyNeedsClusterOperator",
                    "messaging.topology is topologyOperator but the broker is the built-in "
                    "StatefulSet: the topology operator manages RabbitmqClusters only; use "
                    "provider rabbitmqClusterOperator or topology auto",
                )
            )
    if spec.messaging.provider == "rabbitmqClusterOperator" and not rabbitmq_cluster:
        found.append(
            Finding(
                "RabbitmqClusterCRDMissing",
                "messaging.provider is rabbitmqClusterOperator but the "
                "rabbitmqclusters.rabbitmq.com CRD is not installed: install the RabbitMQ "
                "cluster operator or set provider auto",
            )
        )
    if spec.messaging.workers.scaler == "keda" and not keda:
        found.append(
            Finding(
                "KedaCRDMissing",
                "messaging.workers.scaler is keda but the scaledobjects.keda.sh CRD is not "
                "installed: install KEDA or set scaler auto",
            )
        )
    return found


def components(spec: IndexForgeSpec, *, prometheus_operator: bool) -> list[Component]:
    """Components this spec deploys, in a stable order (status reports exactly these)."""
    out: list[Component] = ["api", "ml"]
    if spec.excel.enabled:
        out.append("excel")
    out += ["redis-app", "redis-ml", "redis-state"]
    if spec.redis.state.replication.enabled:
        out.append("sentinel")
    out.append("weaviate")
    if spec.gateway.enabled:
        out.append("gateway")
    mon = spec.monitoring
    if monitoring_mode(spec, prometheus_operator=prometheus_operator) == "Standalone":
        out.append("prometheus")
        if mon.alertmanager.enabled:
            out.append("alertmanager")
    if mon.enabled and mon.grafana.enabled:
        out.append("grafana")
    if mon.enabled and mon.jaeger.enabled:
        out.append("jaeger")
    if spec.messaging.enabled:
        out += ["rabbitmq", "worker"]
    return out


def check_redis_memory(instance: RedisInstance, *, role: str) -> Finding | None:
    """maxmemory must leave room below the container limit (fork for AOF rewrite, buffers)."""
    limit = instance.resources.limits.get("memory")
    if limit is None:
        return None
    maxmemory = parse_redis_memory(instance.maxmemory)
    if maxmemory >= parse_quantity(limit):
        return Finding(
            "RedisMaxmemoryExceedsLimit",
            f"redis.{role}.maxmemory ({instance.maxmemory}) must be below the container "
            f"memory limit ({limit}), or Redis is OOM-killed before it evicts",
        )
    return None


def check_grafana_datasource(spec: IndexForgeSpec, *, prometheus_operator: bool) -> Finding | None:
    """Grafana without any Prometheus to query shows empty dashboards."""
    mon = spec.monitoring
    if not (mon.enabled and mon.grafana.enabled) or mon.prometheus.external_url:
        return None
    if monitoring_mode(spec, prometheus_operator=prometheus_operator) == "Disabled":
        return Finding(
            "GrafanaWithoutPrometheus",
            "grafana is enabled but no Prometheus runs: enable monitoring.prometheus "
            "or set monitoring.prometheus.externalUrl",
        )
    return None


def check_sentry_secret(spec: IndexForgeSpec, *, data: Mapping[str, str] | None) -> Finding | None:
    """`data` is the referenced Secret's .data (None when the Secret does not exist)."""
    ref = spec.sentry.dsn_secret_ref
    if not spec.sentry.enabled or ref is None:
        return None
    if data is None:
        return Finding(
            "SentrySecretMissing", f"Secret {ref.name!r} (sentry.dsnSecretRef) not found"
        )
    if not data.get(ref.key):
        return Finding(
            "SentrySecretKeyMissing", f"Secret {ref.name!r} has no non-empty key {ref.key!r}"
        )
    return None


def check_alertmanager_secret(
    spec: IndexForgeSpec, *, keys: Iterable[str] | None, prometheus_operator: bool
) -> Finding | None:
    """`keys`: the key names of receiversSecretRef's Secret (None when it does not exist)."""
    am = spec.monitoring.alertmanager
    ref = am.receivers_secret_ref
    if ref is None or not am.enabled:
        return None
    if monitoring_mode(spec, prometheus_operator=prometheus_operator) == "Disabled":
        return None
    if keys is None:
        return Finding(
            "AlertmanagerSecretMissing",
            f"Secret {ref.name!r} (monitoring.alertmanager.receiversSecretRef) not found: "
            "alerts reach no receiver",
        )
    missing = sorted(set(am.receivers_secret_keys or ()) - set(keys))
    if missing:
        return Finding(
            "AlertmanagerSecretKeyMissing",
            f"Secret {ref.name!r} has no key {', '.join(repr(k) for k in missing)} "
            "(monitoring.alertmanager.receiversSecretKeys)",
        )
    return None


def check_gpu_capacity(spec: IndexForgeSpec, *, allocatable: Iterable[int]) -> Finding | None:
    """`allocatable`: the GPU resource's allocatable count of every schedulable node."""
    gpu = spec.ml.gpu
    if not gpu.enabled:
        return None
    best = max(allocatable, default=0)
    if best < gpu.count:
        return Finding(
            "InsufficientGPU",
            f"ML pods request {gpu.count} {gpu.resource_name} each, but the largest node offers "
            f"{best}",
        )
    return None


# The name ends at the first character no resource name ends with ("...gpu." or "...gpu,").
_INSUFFICIENT = re.compile(r"Insufficient ([A-Za-z0-9][\w./-]*[A-Za-z0-9])")


def gpu_from_scheduling(spec: IndexForgeSpec, *, messages: Iterable[str]) -> Finding | None:
    """Judge FailedScheduling event messages of the ML pods (e.g. '0/3 nodes are available:
    3 Insufficient nvidia.com/gpu.')."""
    gpu = spec.ml.gpu
    if not gpu.enabled:
        return None
    for message in messages:
        if gpu.resource_name in _INSUFFICIENT.findall(message):
            return Finding(
                "InsufficientGPU",
                f"no node can satisfy {gpu.count} {gpu.resource_name} per ML pod: {message}",
            )
    return None


def check_spec(spec: IndexForgeSpec, *, prometheus_operator: bool) -> list[Finding]:
    """Combinations the CRD schema cannot express; empty when the spec is coherent."""
    found = [
        check_redis_memory(spec.redis.app, role="app"),
        check_redis_memory(spec.redis.ml, role="ml"),
        check_redis_memory(spec.redis.state, role="state"),
        check_grafana_datasource(spec, prometheus_operator=prometheus_operator),
    ]
    if (
        spec.gateway.enabled
        and spec.gateway.key_auth.enabled
        and not spec.gateway.key_auth.consumers
    ):
        found.append(
            Finding(
                "GatewayWithoutConsumers",
                "gateway.keyAuth is enabled but has no consumers: every request is rejected",
            )
        )
    return [f for f in found if f is not None]
