"""Istio mesh mode: sidecars, STRICT mTLS and AuthorizationPolicies from the flow table.

The AuthorizationPolicies are the NetworkPolicies' flows (`network.flows`, one table for
both) expressed by identity: a flow from one of our meshed components allows that
component's ServiceAccount principal on the destination's ports; a flow from outside the
mesh (clients, an outside Prometheus, KEDA) cannot be told apart by identity, so its ports
are PERMISSIVE in the destination's PeerAuthentication and open to any source in its
AuthorizationPolicy, with the NetworkPolicy still narrowing who connects. Every meshed
component gets an AuthorizationPolicy, one without rules allows nothing (the mesh twin of
the default-deny NetworkPolicy).

Metrics ports are left out of the sidecar (`traffic.sidecar.istio.io/excludeInboundPorts`)
rather than merged into the sidecar's own endpoint (`prometheus.istio.io/merge-metrics`):
merging only serves annotation-based scraping, while ours scrapes named ports of the headless
Services, and a Prometheus outside the mesh has no certificate for a STRICT port. Metrics
ports carry nothing but metrics; the NetworkPolicy keeps them to Prometheus. The standalone
Prometheus and Alertmanager stay out of the mesh for the same reason (a scraper in the mesh
would send mTLS to the excluded ports), so Prometheus can reach metrics ports only: every
other port of a meshed pod demands a mesh certificate.

Gateway -> service authentication: the principal check (only Kong's ServiceAccount reaches
the API and ML ports) is the mesh identity of that hop; Kong's per-instance token stays as
defence in depth. The services cannot see whether a sidecar guards them (a pod started
before injection was enabled, or with it disabled by hand, has none), and the API trusts
Kong's `X-Consumer-Username` only on a hop it verified itself; the token costs one header.

PeerAuthentications are per component, not one per instance: port-level modes are keyed by
port number (Kong's proxy and the API share 8000), and Istio resolves two workload policies
selecting the same pod by age, so they must never overlap.
"""

from __future__ import annotations

from ..decisions import components, uses_cluster_operator
from ..naming import LABEL_COMPONENT, Component, Names, selector_labels
from ..spec import IndexForgeSpec
from .backup import backup_sources
from .common import Obj, meta
from .network import Flow, flows
from .targets import scrape_targets

MESH_KINDS = ("PeerAuthentication", "DestinationRule", "AuthorizationPolicy")
INJECT = "sidecar.istio.io/inject"
EXCLUDE_INBOUND = "traffic.sidecar.istio.io/excludeInboundPorts"
# Backup Job pods must end: the proxy as a native sidecar stops with the job's container.
NATIVE_SIDECAR = "sidecar.istio.io/nativeSidecar"
# Scrapers and what only scrapers use: a mesh member would send mTLS to excluded ports.
OUT_OF_MESH: tuple[Component, ...] = ("prometheus", "alertmanager")
_WORKLOADS = ("Deployment", "StatefulSet")


def meshed(spec: IndexForgeSpec, *, prometheus_operator: bool) -> list[Component]:
    """Components whose pods get a sidecar (the cluster operator's brokers are its own)."""
    present = components(spec, prometheus_operator=prometheus_operator)
    if backup_sources(spec, present):
        present = [*present, "backup"]
    return [
        c
        for c in present
        if c not in OUT_OF_MESH and not (c == "rabbitmq" and uses_cluster_operator(spec))
    ]


def metrics_ports(spec: IndexForgeSpec) -> dict[Component, tuple[int, ...]]:
    """Ports only Prometheus uses, per component (each serves nothing but metrics)."""
    out: dict[Component, tuple[int, ...]] = {}
    for target in scrape_targets(spec):
        out[target.component] = (*out.get(target.component, ()), target.port)
    return out


def pod_metadata(
    spec: IndexForgeSpec, component: Component, *, in_mesh: bool
) -> tuple[dict[str, str], dict[str, str]]:
    """(labels, annotations) a component's pod template gets in Istio mode."""
    if not in_mesh:  # explicit: a namespace labelled istio-injection=enabled would inject
        return {INJECT: "false"}, {}
    annotations: dict[str, str] = {}
    excluded = metrics_ports(spec).get(component, ())
    if excluded:
        annotations[EXCLUDE_INBOUND] = ",".join(str(p) for p in excluded)
    if component == "backup":
        annotations[NATIVE_SIDECAR] = "true"
    return {INJECT: "true"}, annotations


def _with_pod_metadata(template: Obj, labels: dict[str, str], annotations: dict[str, str]) -> Obj:
    md = template["metadata"]
    new_md = {**md, "labels": {**md["labels"], **labels}}
    if annotations:
        new_md["annotations"] = {**md.get("annotations", {}), **annotations}
    return {**template, "metadata": new_md}


def inject(
    objs: list[Obj], spec: IndexForgeSpec, *, prometheus_operator: bool, enabled: bool = True
) -> list[Obj]:
    """`objs` with the sidecar labels/annotations on every pod template we own.

    `enabled` False (mesh mode none while Istio is installed): every pod opts out with an
    explicit "false". Dropping the label instead would not roll the pods: the reconciler
    applies an object only when a field it sets differs, and an absent label is none."""
    members = set(meshed(spec, prometheus_operator=prometheus_operator)) if enabled else set()
    out = []
    for obj in objs:
        if obj["kind"] in _WORKLOADS or obj["kind"] == "CronJob":
            holder = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
            template = holder["template"]
            component = template["metadata"]["labels"][LABEL_COMPONENT]
            labels, annotations = pod_metadata(spec, component, in_mesh=component in members)
            holder = {**holder, "template": _with_pod_metadata(template, labels, annotations)}
            if obj["kind"] == "CronJob":
                job = {**obj["spec"]["jobTemplate"], "spec": holder}
                obj = {**obj, "spec": {**obj["spec"], "jobTemplate": job}}
            else:
                obj = {**obj, "spec": holder}
        out.append(obj)
    return out


def principal(spec: IndexForgeSpec, names: Names, component: Component) -> str:
    """SPIFFE identity (without `spiffe://`) of a component's ServiceAccount."""
    sa = names.component(component)
    return f"{spec.mesh.trust_domain}/ns/{names.namespace}/sa/{sa}"


def _inbound(all_flows: list[Flow], component: Component, excluded: tuple[int, ...]) -> list[Flow]:
    """Flows into `component`, TCP ports only (the sidecar carries no UDP), minus the ports
    the sidecar does not intercept; flows left without a port are dropped."""
    out = []
    for flow in all_flows:
        if flow.dest != component:
            continue
        kept = tuple(p for p in flow.ports if p not in excluded)
        if kept:
            out.append(Flow(flow.source, component, kept))
    return out


def _is_member(source: object, members: set[Component]) -> bool:
    return isinstance(source, str) and source in members


def _peer_authentication(
    names: Names, component: Component, inbound: list[Flow], members: set[Component]
) -> Obj:
    permissive = sorted({p for f in inbound if not _is_member(f.source, members) for p in f.ports})
    spec: Obj = {
        "selector": {"matchLabels": selector_labels(names, component)},
        "mtls": {"mode": "STRICT"},
    }
    if permissive:
        spec["portLevelMtls"] = {str(p): {"mode": "PERMISSIVE"} for p in permissive}
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": meta(names, component, names.component(component)),
        "spec": spec,
    }


def _authorization_policy(
    spec: IndexForgeSpec,
    names: Names,
    component: Component,
    inbound: list[Flow],
    members: set[Component],
) -> Obj:
    rules: list[Obj] = []
    for flow in inbound:
        rule: Obj = {"to": [{"operation": {"ports": [str(p) for p in flow.ports]}}]}
        if _is_member(flow.source, members):
            assert isinstance(flow.source, str)
            source = {"principals": [principal(spec, names, flow.source)]}
            rule = {"from": [{"source": source}], **rule}
        if rule not in rules:
            rules.append(rule)
    policy: Obj = {
        "selector": {"matchLabels": selector_labels(names, component)},
        "action": "ALLOW",
    }
    if rules:
        policy["rules"] = rules
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": meta(names, component, names.component(component)),
        "spec": policy,
    }


def _destination_rule(names: Names, component: Component, service: str) -> Obj:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": meta(names, component, service),
        "spec": {
            # A short name is this namespace's Service, in whatever the cluster domain is.
            "host": service,
            "exportTo": ["."],
            "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
        },
    }


def build_mesh(spec: IndexForgeSpec, names: Names, *, prometheus_operator: bool) -> list[Obj]:
    """Istio objects of one instance (spec resolved, mesh mode istio)."""
    members = meshed(spec, prometheus_operator=prometheus_operator)
    member_set = set(members)
    all_flows = flows(spec, prometheus_operator=prometheus_operator)
    excluded = metrics_ports(spec)
    out: list[Obj] = []
    for component in members:
        inbound = _inbound(all_flows, component, excluded.get(component, ()))
        out.append(_peer_authentication(names, component, inbound, member_set))
        out.append(_authorization_policy(spec, names, component, inbound, member_set))
        # Mutual TLS demanded by clients, to what meshed clients connect to.
        if any(_is_member(f.source, member_set) for f in inbound):
            for service in (names.component(component), names.headless(component)):
                out.append(_destination_rule(names, component, service))
    return out
