"""Istio mesh mode: detection, sidecar labels, and policies derived from the NetworkPolicies.

The AuthorizationPolicies are checked against the NetworkPolicies the same build produces
(not against a copy of the flow table): every identity-checked rule must correspond to an
ingress rule from that component's pods on the same ports, and the issue's promises (only
Kong reaches the API and ML, only the API and workers reach Weaviate and the state Redis,
Prometheus only metrics ports) are asserted by name.
"""

from __future__ import annotations

from typing import Any

import pytest

from indexforge_operator.builders import build_all
from indexforge_operator.builders.mesh import EXCLUDE_INBOUND, INJECT, MESH_KINDS, NATIVE_SIDECAR
from indexforge_operator.decisions import check_integrations, resolve_integrations
from indexforge_operator.naming import LABEL_COMPONENT

from .support import NAMES, find, make_spec, maybe, secrets_for

MESSAGING = {"messaging": {"enabled": True}, "excel": {"enabled": True}}
SA = "cluster.local/ns/shop/sa/demo-{}"


def _build(raw: dict[str, Any] | None = None, *, istio: bool = True, **flags: bool) -> list[Any]:
    spec = make_spec(raw)
    return build_all(
        spec, NAMES, secrets=secrets_for(spec), prometheus_operator=False, istio=istio, **flags
    )


def _pod_meta(obj: dict[str, Any]) -> dict[str, Any]:
    holder = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
    meta: dict[str, Any] = holder["template"]["metadata"]
    return meta


def _rules(objs: list[Any], component: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = find(objs, "AuthorizationPolicy", f"demo-{component}")[
        "spec"
    ].get("rules", [])
    return rules


def _allowed(objs: list[Any], component: str) -> dict[str, set[str]]:
    """principal (or "*" for any source) -> ports, of a component's AuthorizationPolicy."""
    out: dict[str, set[str]] = {}
    for rule in _rules(objs, component):
        ports = {p for to in rule["to"] for p in to["operation"]["ports"]}
        sources = [p for f in rule.get("from", []) for p in f["source"]["principals"]] or ["*"]
        for source in sources:
            out.setdefault(source, set()).update(ports)
    return out


def test_auto_follows_istios_crds_and_an_explicit_mode_wins() -> None:
    auto = make_spec()
    assert (
        resolve_integrations(auto, rabbitmq_cluster=False, keda=False, istio=True).mesh.mode
        == "istio"
    )
    assert resolve_integrations(auto, rabbitmq_cluster=False, keda=False).mesh.mode == "none"
    off = make_spec({"mesh": {"mode": "none"}})
    assert (
        resolve_integrations(off, rabbitmq_cluster=False, keda=False, istio=True).mesh.mode
        == "none"
    )
    assert not {o["kind"] for o in _build({"mesh": {"mode": "none"}})} & set(MESH_KINDS)
    assert not {o["kind"] for o in _build(istio=False)} & set(MESH_KINDS)
    plain = _build(istio=False)
    assert all(INJECT not in _pod_meta(o)["labels"] for o in plain if o["kind"] == "Deployment")
    # Istio installed but the mesh off: an explicit opt-out (a dropped label would not be
    # seen as drift, so the pods would keep their sidecars).
    opted_out = [o for o in _build({"mesh": {"mode": "none"}}) if o["kind"] == "Deployment"]
    assert opted_out and all(_pod_meta(o)["labels"][INJECT] == "false" for o in opted_out)


def test_forced_istio_without_its_crds_is_a_finding_and_leaves_the_objects_out() -> None:
    spec = make_spec({"mesh": {"mode": "istio"}})
    found = check_integrations(spec, rabbitmq_cluster=False, keda=False, istio=False)
    assert [f.reason for f in found] == ["IstioCRDMissing"]
    assert "peerauthentications.security.istio.io" in found[0].message
    assert check_integrations(spec, rabbitmq_cluster=False, keda=False, istio=True) == []
    # Found with messaging off too (the messaging checks return early there).
    assert not make_spec().messaging.enabled
    objs = _build({"mesh": {"mode": "istio"}}, istio=False)
    assert not {o["kind"] for o in objs} & set(MESH_KINDS)


def test_every_pod_template_is_labelled_and_scrapers_stay_out() -> None:
    raw = {**MESSAGING, "backup": {"enabled": True, "target": {"volume": {"claimName": "b"}}}}
    objs = _build(raw)
    pods = {
        o["metadata"]["name"]: _pod_meta(o)
        for o in objs
        if o["kind"] in ("Deployment", "StatefulSet", "CronJob")
    }
    assert pods, "no workloads"
    for name, meta in pods.items():
        component = meta["labels"][LABEL_COMPONENT]
        want = "false" if component in ("prometheus", "alertmanager") else "true"
        assert meta["labels"][INJECT] == want, name
    assert pods["demo-api"]["annotations"][EXCLUDE_INBOUND] == "9102"
    assert pods["demo-redis-app"]["annotations"][EXCLUDE_INBOUND] == "9121"
    assert pods["demo-weaviate"]["annotations"][EXCLUDE_INBOUND] == "2112"
    assert pods["demo-gateway"]["annotations"][EXCLUDE_INBOUND] == "8100"
    # The checksum annotation is kept next to the mesh one.
    assert "indexforge.io/config-checksum" in pods["demo-gateway"]["annotations"]
    backups = [m for n, m in pods.items() if n.endswith("-backup")]
    assert backups and all(m["annotations"][NATIVE_SIDECAR] == "true" for m in backups)
    assert EXCLUDE_INBOUND not in pods["demo-prometheus"].get("annotations", {})


def test_authorization_policies_mirror_the_network_policies() -> None:
    objs = _build(MESSAGING)
    for policy in (o for o in objs if o["kind"] == "AuthorizationPolicy"):
        component = policy["spec"]["selector"]["matchLabels"][LABEL_COMPONENT]
        netpol = find(objs, "NetworkPolicy", f"demo-{component}")
        ingress = {
            (r["from"][0]["podSelector"]["matchLabels"][LABEL_COMPONENT], p["port"])
            for r in netpol["spec"]["ingress"]
            if "podSelector" in r.get("from", [{}])[0]
            for p in r["ports"]
            if p["protocol"] == "TCP"
        }
        for principal, ports in _allowed(objs, component).items():
            if principal == "*":
                continue
            source = principal.rsplit("/sa/demo-", 1)[1]
            for port in ports:
                assert (source, int(port)) in ingress, (component, source, port)


def test_the_issues_promises_by_identity() -> None:
    objs = _build(MESSAGING)
    assert _allowed(objs, "api") == {SA.format("gateway"): {"8000"}}
    ml = _allowed(objs, "ml")
    assert ml[SA.format("gateway")] == {"8080"} and "*" not in ml
    for store in ("weaviate", "redis-state"):
        clients = {p for p in _allowed(objs, store) if p != SA.format("weaviate")}
        assert clients == {SA.format("api"), SA.format("worker")}, store
    # No rule names a metrics port: the sidecar does not carry them (excluded), and nothing
    # else of a meshed pod is open to a source without a mesh identity except what clients
    # outside the instance use (Kong's proxy).
    for policy in (o for o in objs if o["kind"] == "AuthorizationPolicy"):
        ports = {
            p
            for r in policy["spec"].get("rules", [])
            for t in r["to"]
            for p in t["operation"]["ports"]
        }
        assert not ports & {"9102", "9121", "2112", "8100", "15692", "8888"}, policy["metadata"]
    assert _allowed(objs, "gateway") == {"*": {"8000"}}
    # Nothing connects to the workers: a policy without rules allows nothing.
    assert "rules" not in find(objs, "AuthorizationPolicy", "demo-worker")["spec"]
    assert find(objs, "AuthorizationPolicy", "demo-worker")["spec"]["action"] == "ALLOW"


def test_peer_authentication_strict_with_permissive_ports_only_for_outside_sources() -> None:
    objs = _build({**MESSAGING, "gateway": {"tls": {"enabled": True, "secretName": "t"}}})
    peer = {o["metadata"]["name"]: o["spec"] for o in objs if o["kind"] == "PeerAuthentication"}
    assert all(p["mtls"]["mode"] == "STRICT" for p in peer.values())
    assert peer["demo-gateway"]["portLevelMtls"] == {
        "8000": {"mode": "PERMISSIVE"},
        "8443": {"mode": "PERMISSIVE"},
    }
    assert "portLevelMtls" not in peer["demo-api"]  # only Kong, with a mesh identity
    assert "demo-prometheus" not in peer and "demo-alertmanager" not in peer
    # Without the gateway, clients outside the mesh talk to the API directly.
    direct = _build({"gateway": {"enabled": False}})
    assert find(direct, "PeerAuthentication", "demo-api")["spec"]["portLevelMtls"] == {
        "8000": {"mode": "PERMISSIVE"}
    }
    assert _allowed(direct, "api") == {"*": {"8000"}}


def test_destination_rules_for_what_meshed_clients_call() -> None:
    objs = _build(MESSAGING)
    rules = {o["metadata"]["name"]: o["spec"] for o in objs if o["kind"] == "DestinationRule"}
    for host in ("demo-api", "demo-ml", "demo-weaviate-headless", "demo-redis-state"):
        assert rules[host]["host"] == host
        assert rules[host]["trafficPolicy"]["tls"]["mode"] == "ISTIO_MUTUAL"
        assert rules[host]["exportTo"] == ["."]
    # Out of the mesh (mTLS would break them) or called by nobody in it.
    assert not {"demo-prometheus", "demo-gateway", "demo-worker-headless"} & set(rules)


def test_trust_domain_and_the_cluster_operators_brokers() -> None:
    raw = {**MESSAGING, "mesh": {"trustDomain": "prod.example.org"}}
    objs = _build(raw, rabbitmq_cluster=True)
    assert "prod.example.org/ns/shop/sa/demo-gateway" in _allowed(objs, "api")
    # The RabbitmqCluster's pods are the cluster operator's: no mesh objects of ours.
    assert maybe(objs, "PeerAuthentication", "demo-rabbitmq") is None
    assert maybe(objs, "DestinationRule", "demo-rabbitmq") is None


@pytest.mark.parametrize("bad", ["Cluster.Local", "", "-x"])
def test_trust_domain_is_validated(bad: str) -> None:
    with pytest.raises(ValueError):
        make_spec({"mesh": {"trustDomain": bad}})
