"""Pure builders: spec + names (+ generated secrets, + monitoring mode) -> desired objects.

`build_all` is what the reconciler applies and `indexforge render` prints. No builder reads
the clock, the environment or the cluster; the same input always gives the same objects, in
the same order (dependencies first: accounts, secrets and config before workloads).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..decisions import (
    components,
    monitoring_mode,
    resolve_integrations,
    uses_cluster_operator,
    uses_istio,
    uses_topology_operator,
)
from ..generated import GeneratedSecrets
from ..naming import Names
from ..spec import IndexForgeSpec
from .alertmanager import build_alertmanager, build_alertmanager_config
from .api import build_api
from .backup import build_backups
from .common import Obj
from .credentials import build_internal_auth
from .dashboards import build_dashboards
from .excel import build_excel
from .external_secrets import KINDS as EXTERNAL_SECRETS_KINDS
from .external_secrets import convert as to_external_secrets
from .external_secrets import placeholders
from .gateway import build_gateway, entry_url
from .grafana import build_grafana
from .jaeger import build_jaeger
from .mesh import MESH_KINDS, build_mesh, inject
from .messaging import build_rabbitmq_cluster, build_workers
from .ml import build_ml
from .network import build_network_policies
from .prometheus import build_prometheus
from .rabbitmq import build_rabbitmq
from .rabbitmq_topology import TOPOLOGY_KINDS, build_rabbitmq_topology
from .redis import build_redis
from .servicemonitors import build_prometheus_rule, build_service_monitors
from .weaviate import build_weaviate

__all__ = [
    "APPLY_ORDER",
    "Obj",
    "build_alertmanager",
    "build_alertmanager_config",
    "build_all",
    "build_api",
    "build_backups",
    "build_excel",
    "build_gateway",
    "build_grafana",
    "build_jaeger",
    "build_ml",
    "build_network_policies",
    "build_prometheus",
    "build_prometheus_rule",
    "build_rabbitmq",
    "build_rabbitmq_cluster",
    "build_redis",
    "build_service_monitors",
    "build_weaviate",
    "build_workers",
    "entry_url",
]

APPLY_ORDER = (
    "ServiceAccount",
    "Secret",
    "SecretStore",
    "ExternalSecret",
    "ConfigMap",
    "NetworkPolicy",
    "PeerAuthentication",
    "DestinationRule",
    "AuthorizationPolicy",
    "Service",
    "StatefulSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "RabbitmqCluster",
    "User",
    "Permission",
    "Exchange",
    "Queue",
    "Binding",
    "TriggerAuthentication",
    "ScaledObject",
    "ServiceMonitor",
    "PrometheusRule",
    "AlertmanagerConfig",
    "CronJob",
)


def _order(obj: Obj) -> tuple[int, str]:
    return APPLY_ORDER.index(obj["kind"]), obj["metadata"]["name"]


def build_all(
    spec: IndexForgeSpec,
    names: Names,
    *,
    secrets: GeneratedSecrets,
    prometheus_operator: bool,
    alertmanager_configs: bool | None = None,
    receiver_keys: Iterable[str] = (),
    rabbitmq_cluster: bool = False,
    keda: bool = False,
    rabbitmq_topology: bool = False,
    istio: bool = False,
    restoring: Iterable[str] = (),
    external_secrets: bool = False,
) -> list[Obj]:
    """Every object of one instance, sorted by APPLY_ORDER then name.

    `alertmanager_configs`: the AlertmanagerConfig CRD exists (None: as prometheus_operator,
    the whole prometheus-operator CRD set); `receiver_keys`: key names of the Alertmanager
    receivers Secret (never its values); `rabbitmq_cluster`, `keda`, `rabbitmq_topology`: the
    RabbitmqCluster, KEDA ScaledObject and messaging topology operator CRDs exist; `istio`:
    Istio's security/networking CRDs exist; `restoring`: Redis components stopped while a
    restore replaces their data (the CR's status.restoreRequest, see on_demand.py);
    `external_secrets`: the ExternalSecret CRD exists. With secrets.provider
    externalSecrets, `secrets` is ignored: the values are templates External Secrets fills
    in (builders/external_secrets.py).
    """
    if spec.secrets.provider == "externalSecrets":
        secrets = placeholders(spec)
    spec = resolve_integrations(
        spec,
        rabbitmq_cluster=rabbitmq_cluster,
        keda=keda,
        rabbitmq_topology=rabbitmq_topology,
        istio=istio,
    )
    mon = spec.monitoring
    messaging = spec.messaging.enabled
    objs = [
        *build_internal_auth(names, secrets=secrets, messaging=messaging),
        *build_api(spec, names),
        *build_ml(spec, names),
        *build_excel(spec, names),
        *build_redis(spec, names, restoring=frozenset(restoring)),
        *build_weaviate(spec, names, key_overlap=bool(secrets.weaviate_accepted)),
        *build_gateway(spec, names, secrets=secrets),
        *build_network_policies(spec, names, prometheus_operator=prometheus_operator),
    ]
    mode = monitoring_mode(spec, prometheus_operator=prometheus_operator)
    if mode == "Standalone":
        objs += build_prometheus(spec, names)
        if mon.alertmanager.enabled:
            objs += build_alertmanager(spec, names, receiver_keys=receiver_keys)
    elif mode == "PrometheusOperator":
        objs += [*build_service_monitors(spec, names), *build_prometheus_rule(spec, names)]
        with_config = prometheus_operator if alertmanager_configs is None else alertmanager_configs
        if mon.alertmanager.enabled and with_config:
            objs += build_alertmanager_config(spec, names, receiver_keys=receiver_keys)
    if mon.enabled and mon.grafana.enabled:
        objs += build_grafana(spec, names, secrets=secrets, prometheus_operator=prometheus_operator)
    objs += build_dashboards(spec, names, prometheus_operator=prometheus_operator)
    if mon.enabled and mon.jaeger.enabled:
        objs += build_jaeger(spec, names)
    objs += build_backups(spec, names, components(spec, prometheus_operator=prometheus_operator))
    if messaging:
        broker = build_rabbitmq_cluster if uses_cluster_operator(spec) else build_rabbitmq
        objs += [*broker(spec, names), *build_workers(spec, names)]
        if uses_topology_operator(spec):
            objs += build_rabbitmq_topology(spec, names, secrets=secrets)
    if uses_istio(spec):
        objs = inject(objs, spec, prometheus_operator=prometheus_operator)
        objs += build_mesh(spec, names, prometheus_operator=prometheus_operator)
    elif istio:  # Istio installed, mesh mode none: the pods opt out
        objs = inject(objs, spec, prometheus_operator=prometheus_operator, enabled=False)
    if spec.secrets.provider == "externalSecrets":
        objs = to_external_secrets(spec, names, objs)
    # A kind the spec forces whose CRD is missing is left out (the status says why:
    # decisions.check_integrations) rather than failing its apply on every pass.
    served = {
        "RabbitmqCluster": rabbitmq_cluster,
        **dict.fromkeys(TOPOLOGY_KINDS, rabbitmq_topology),
        **dict.fromkeys(("ScaledObject", "TriggerAuthentication"), keda),
        **dict.fromkeys(MESH_KINDS, istio),
        **dict.fromkeys(EXTERNAL_SECRETS_KINDS, external_secrets),
    }
    objs = [o for o in objs if served.get(o["kind"], True)]
    return sorted(objs, key=_order)
