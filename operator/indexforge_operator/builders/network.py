"""NetworkPolicies: deny everything for the instance's pods, then allow each needed flow.

Flows are listed once (source, destination, ports); each becomes an ingress rule on the
destination's policy and an egress rule on the source's. `None` stands for "outside the
instance": clients and other namespaces as a source, anywhere as a destination. DNS egress
is allowed for every pod.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ..decisions import components, monitoring_mode, uses_cluster_operator
from ..naming import Component, Names, instance_pod_selector, selector_labels
from ..spec import IndexForgeSpec
from . import ports
from .backup import backup_sources
from .common import Obj, meta
from .targets import scrape_targets

_SERVICES: tuple[Component, ...] = ("api", "ml", "excel", "worker")
# The KEDA operator polls the ingest queue's length (its chart's pod label, any namespace).
KEDA_OPERATOR = (("app.kubernetes.io/name", "keda-operator"),)


@dataclass(frozen=True)
class Outside:
    """Pods outside the instance picked by labels (e.g. a cluster-wide Prometheus)."""

    namespace_labels: tuple[tuple[str, str], ...]
    pod_labels: tuple[tuple[str, str], ...]

    def peer(self) -> Obj:
        return {
            "namespaceSelector": {"matchLabels": dict(self.namespace_labels)},
            "podSelector": {"matchLabels": dict(self.pod_labels)},
        }


@dataclass(frozen=True)
class Foreign:
    """Pods of this namespace that are not ours, picked by their own labels (the RabbitMQ
    cluster operator's broker pods)."""

    pod_labels: tuple[tuple[str, str], ...]

    def peer(self) -> Obj:
        return {"podSelector": {"matchLabels": dict(self.pod_labels)}}


@dataclass(frozen=True)
class Flow:
    source: Component | Outside | None
    dest: Component | Foreign | None
    ports: tuple[int, ...]
    udp: tuple[int, ...] = ()  # UDP ports besides the TCP ones (Alertmanager's gossip)


def scraper(spec: IndexForgeSpec) -> Outside:
    scrape = spec.monitoring.service_monitor.scrape_from
    return Outside(
        tuple(sorted(scrape.namespace_selector.items())), tuple(sorted(scrape.pod_selector.items()))
    )


def _url_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def receiver_ports(spec: IndexForgeSpec) -> tuple[int, ...]:
    """Where Alertmanager sends notifications: HTTPS for Slack and PagerDuty (whenever a
    receivers Secret is named), the webhook's port, the SMTP server's port."""
    am = spec.monitoring.alertmanager
    out = [ports.HTTPS] if am.receivers_secret_ref is not None else []
    if am.webhook_url:
        out.append(_url_port(am.webhook_url))
    if am.email.to and am.email.smarthost:
        out.append(int(am.email.smarthost.rpartition(":")[2]))
    return tuple(dict.fromkeys(out))  # first occurrence order, as the chart's `uniq`


def flows(spec: IndexForgeSpec, *, prometheus_operator: bool) -> list[Flow]:
    """Every connection the stack needs (only between components that exist)."""
    present = set(components(spec, prometheus_operator=prometheus_operator))
    services = [c for c in _SERVICES if c in present]
    out: list[Flow] = []
    if "gateway" in present:
        proxy = (
            (ports.KONG_PROXY, ports.KONG_PROXY_TLS)
            if spec.gateway.tls.enabled
            else (ports.KONG_PROXY,)
        )
        out += [
            Flow(None, "gateway", proxy),
            Flow("gateway", "api", (ports.API,)),
            Flow("gateway", "ml", (ports.ML,)),
        ]
        if spec.gateway.rate_limiting.enabled and spec.gateway.rate_limiting.policy == "redis":
            out.append(Flow("gateway", "redis-app", (ports.REDIS,)))  # shared counters
    else:
        out.append(Flow(None, "api", (ports.API,)))  # clients talk to the API directly
    out += [
        Flow("api", "redis-app", (ports.REDIS,)),
        Flow("api", "redis-state", (ports.REDIS,)),
        Flow("api", "weaviate", (ports.WEAVIATE_HTTP, ports.WEAVIATE_GRPC)),
        Flow("api", "ml", (ports.ML,)),
        Flow("ml", "redis-ml", (ports.REDIS,)),
        Flow("weaviate", "ml", (ports.ML,)),
        # Cluster traffic between Weaviate pods: memberlist gossip (TCP and UDP), replica
        # reads/writes on the data port, Raft and its RPC (schema, membership).
        Flow(
            "weaviate",
            "weaviate",
            (
                ports.WEAVIATE_GOSSIP,
                ports.WEAVIATE_DATA,
                ports.WEAVIATE_RAFT,
                ports.WEAVIATE_RAFT_RPC,
            ),
            udp=(ports.WEAVIATE_GOSSIP,),
        ),
    ]
    if "sentinel" in present:
        out += _sentinel_flows(services)
    if "excel" in present:
        out += [Flow("api", "excel", (ports.EXCEL,)), Flow("excel", "redis-app", (ports.REDIS,))]
    if "jaeger" in present:
        otlp = (ports.JAEGER_OTLP_GRPC, ports.JAEGER_OTLP_HTTP)
        out += [Flow(s, "jaeger", otlp) for s in services]
        out.append(Flow(None, "jaeger", (ports.JAEGER_UI,)))  # the UI, for people
    if "grafana" in present:
        out.append(Flow(None, "grafana", (ports.GRAFANA,)))
        if "jaeger" in present:
            out.append(Flow("grafana", "jaeger", (ports.JAEGER_UI,)))
        url = spec.monitoring.prometheus.external_url
        if "prometheus" in present and not url:
            out.append(Flow("grafana", "prometheus", (ports.PROMETHEUS,)))
        else:
            out.append(Flow("grafana", None, (_url_port(url) if url else ports.PROMETHEUS,)))
    mode = monitoring_mode(spec, prometheus_operator=prometheus_operator)
    for target in scrape_targets(spec):
        if mode == "Standalone":
            out.append(Flow("prometheus", target.component, (target.port,)))
        elif mode == "PrometheusOperator":  # Prometheus lives elsewhere: only it, only metrics
            out.append(Flow(scraper(spec), target.component, (target.port,)))
    if "alertmanager" in present:
        out.append(Flow("prometheus", "alertmanager", (ports.ALERTMANAGER,)))
        if spec.monitoring.alertmanager.replicas > 1:
            cluster = (ports.ALERTMANAGER_CLUSTER,)
            out.append(Flow("alertmanager", "alertmanager", cluster, udp=cluster))
        notify = receiver_ports(spec)
        if notify:
            out.append(Flow("alertmanager", None, notify))
    if "rabbitmq" in present:
        out += _messaging_flows(spec, broker_peer(spec), present)
    if spec.sentry.enabled:
        out += [Flow(s, None, (ports.HTTPS,)) for s in services]
    if "prometheus" in backup_sources(spec, list(present)):
        # The snapshot admin API; with Grafana's datasource, the only client of port 9090.
        out.append(Flow("backup", "prometheus", (ports.PROMETHEUS,)))
    backed_up = backup_sources(spec, list(present))
    if "weaviate" in backed_up:  # the backup API
        out.append(Flow("backup", "weaviate", (ports.WEAVIATE_HTTP,)))
    for redis in ("redis-app", "redis-state"):  # RDB snapshots over the replication handshake
        if redis in backed_up:
            out.append(Flow("backup", redis, (ports.REDIS,)))
    return out


def broker_peer(spec: IndexForgeSpec) -> Component | Foreign:
    """Where clients find the broker's pods: ours, or the cluster operator's (its pods carry
    `app.kubernetes.io/name: <RabbitmqCluster name>`; the name is not known here, so the
    component label it sets on every broker pod stands in, within this namespace)."""
    if uses_cluster_operator(spec):
        return Foreign((("app.kubernetes.io/component", "rabbitmq"),))
    return "rabbitmq"


def _sentinel_flows(services: list[Component]) -> list[Flow]:
    """The replicated state Redis: its clients ask the sentinels for the primary; the
    sentinels talk to each other and watch every Redis pod; replicas sync from the primary
    (any pod may be it) and each pod's init step asks the sentinels too."""
    clients = [c for c in services if c in ("api", "worker")]
    return [
        *(Flow(c, "sentinel", (ports.SENTINEL,)) for c in clients),
        Flow("sentinel", "sentinel", (ports.SENTINEL,)),
        Flow("sentinel", "redis-state", (ports.REDIS,)),
        Flow("redis-state", "redis-state", (ports.REDIS,)),
        Flow("redis-state", "sentinel", (ports.SENTINEL,)),
    ]


def _messaging_flows(
    spec: IndexForgeSpec, broker: Component | Foreign, present: set[Component]
) -> list[Flow]:
    """Publishers and workers to the broker, workers to what indexing uses, nodes to nodes."""
    amqp = (ports.RABBITMQ_AMQP,)
    out = [Flow("api", broker, amqp), Flow("worker", broker, amqp)]
    out += [
        Flow("worker", "redis-app", (ports.REDIS,)),
        Flow("worker", "redis-state", (ports.REDIS,)),
        Flow("worker", "weaviate", (ports.WEAVIATE_HTTP, ports.WEAVIATE_GRPC)),
        Flow("worker", "ml", (ports.ML,)),
    ]
    if "excel" in present:
        out.append(Flow("worker", "excel", (ports.EXCEL,)))
    if broker == "rabbitmq":  # our StatefulSet: clustering, and KEDA reading queue lengths
        out.append(Flow("rabbitmq", "rabbitmq", (ports.RABBITMQ_EPMD, ports.RABBITMQ_DIST)))
        if spec.messaging.workers.scaler == "keda":
            out.append(Flow(Outside((), KEDA_OPERATOR), "rabbitmq", amqp))
    return out


def _ports(flow: Flow) -> list[Obj]:
    return [{"protocol": "TCP", "port": p} for p in flow.ports] + [
        {"protocol": "UDP", "port": p} for p in flow.udp
    ]


def _peer(names: Names, component: Component) -> Obj:
    return {"podSelector": {"matchLabels": selector_labels(names, component)}}


def _policy(names: Names, component: Component, all_flows: list[Flow]) -> Obj:
    ingress: list[Obj] = []
    egress: list[Obj] = [
        {"ports": [{"protocol": "UDP", "port": ports.DNS}, {"protocol": "TCP", "port": ports.DNS}]}
    ]
    for flow in all_flows:
        if flow.dest == component:
            rule: Obj = {"ports": _ports(flow)}
            if isinstance(flow.source, Outside):
                rule = {"from": [flow.source.peer()], **rule}
            elif flow.source is not None:
                rule = {"from": [_peer(names, flow.source)], **rule}
            ingress.append(rule)
        if flow.source == component:
            rule = {"ports": _ports(flow)}
            if isinstance(flow.dest, Foreign):
                rule = {"to": [flow.dest.peer()], **rule}
            elif flow.dest is not None:
                rule = {"to": [_peer(names, flow.dest)], **rule}
            egress.append(rule)
    spec: Obj = {
        "podSelector": {"matchLabels": selector_labels(names, component)},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": ingress,
        "egress": egress,
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(names, component, names.component(component)),
        "spec": spec,
    }


def build_network_policies(
    spec: IndexForgeSpec, names: Names, *, prometheus_operator: bool
) -> list[Obj]:
    all_flows = flows(spec, prometheus_operator=prometheus_operator)
    deny: Obj = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(names, None, names.default_deny),
        "spec": {
            "podSelector": {"matchLabels": instance_pod_selector(names)},
            "policyTypes": ["Ingress", "Egress"],
        },
    }
    present = components(spec, prometheus_operator=prometheus_operator)
    if uses_cluster_operator(spec):
        # Its pods are the cluster operator's (and need its API access); no policy of ours.
        present = [c for c in present if c != "rabbitmq"]
    if backup_sources(spec, present):
        present = [*present, "backup"]
    return [deny, *(_policy(names, c, all_flows) for c in present)]
