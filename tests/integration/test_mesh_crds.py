"""Istio objects of mesh mode against Istio's real CRDs on the local API server.

The PeerAuthentication, AuthorizationPolicy and DestinationRule CRDs are read from
`../shared/reference/crds/istio/` (never copied) and applied; every object `build_all`
produces for them is sent first as a server-side dry-run, then created for real, both with
strict field validation: the real schemas (types, enums, CEL rules, unknown keys) judge them.
Deliberately wrong objects are refused, so a check that accepted anything would fail here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from indexforge_operator.builders import build_all
from indexforge_operator.builders.mesh import MESH_KINDS
from indexforge_operator.generated import GeneratedSecrets, complete
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec
from tests import reference
from tests.conftest import kubectl
from tests.waiting import wait_for

WANTED = ("peerauthentications", "authorizationpolicies", "destinationrules")
# Every flow kind: Kong with TLS, messaging with KEDA outside the mesh, backups, a trust domain.
SPEC = {
    "mesh": {"mode": "istio", "trustDomain": "prod.example.org"},
    "excel": {"enabled": True},
    "gateway": {"tls": {"enabled": True, "secretName": "tls"}},
    "messaging": {"enabled": True, "workers": {"scaler": "keda"}},
    "backup": {"enabled": True, "redis": True, "target": {"volume": {"claimName": "b"}}},
}


@pytest.fixture(scope="module")
def istio_crds(kubeconfig: Path) -> Iterator[list[str]]:
    crds = [
        reference.load_crd(path)
        for path in reference.crd_files("istio")
        if path.name.split(".")[0] in WANTED
    ]
    assert len(crds) == 3, [c["metadata"]["name"] for c in crds]
    kubectl(kubeconfig, "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(crds))
    names = [c["metadata"]["name"] for c in crds]

    def established() -> bool:
        items = json.loads(kubectl(kubeconfig, "get", "crd", *names, "-o", "json"))["items"]
        return len(items) == len(names) and all(
            any(c["type"] == "Established" and c["status"] == "True"
                for c in item.get("status", {}).get("conditions", []))
            for item in items
        )  # fmt: skip

    wait_for(established, timeout=30, what="Istio CRDs established")
    try:
        yield names
    finally:
        kubectl(kubeconfig, "delete", "crd", *names, "--timeout=120s", check=False)


def _mesh_objects(namespace: str) -> list[dict[str, Any]]:
    spec = IndexForgeSpec.model_validate(SPEC)
    names = Names(instance="demo", namespace=namespace)
    secrets = complete(spec, current=GeneratedSecrets(), token=lambda: "not-a-real-token")
    objs = build_all(spec, names, secrets=secrets, prometheus_operator=False, keda=True, istio=True)
    return [o for o in objs if o["kind"] in MESH_KINDS]


def _send(kubeconfig: Path, namespace: str, objs: list[dict[str, Any]], *dry: str) -> str:
    return kubectl(
        kubeconfig, "create", "-n", namespace, "--validate=strict", *dry, "-f", "-",
        stdin=yaml.safe_dump_all(objs), check=False,
    )  # fmt: skip


def test_every_istio_object_passes_the_real_schemas(
    kubeconfig: Path, namespace: str, istio_crds: list[str]
) -> None:
    objs = _mesh_objects(namespace)
    assert {o["kind"] for o in objs} == set(MESH_KINDS)
    dry = kubectl(
        kubeconfig, "apply", "-n", namespace, "--server-side", "--dry-run=server",
        "--validate=strict", "--field-manager=indexforge-operator", "-f", "-",
        stdin=yaml.safe_dump_all(objs), check=False,
    )  # fmt: skip
    assert dry.count("serverside-applied (server dry run)") == len(objs), dry
    out = _send(kubeconfig, namespace, objs)
    assert out.count("created") == len(objs), out
    stored = json.loads(
        kubectl(
            kubeconfig, "get", "-n", namespace, "authorizationpolicies", "demo-api", "-o", "json"
        )
    )
    (rule,) = stored["spec"]["rules"]
    principals = rule["from"][0]["source"]["principals"]
    assert principals == [f"prod.example.org/ns/{namespace}/sa/demo-gateway"]
    peer = json.loads(
        kubectl(
            kubeconfig, "get", "-n", namespace, "peerauthentications", "demo-gateway", "-o", "json"
        )
    )
    assert peer["spec"]["mtls"]["mode"] == "STRICT"
    assert set(peer["spec"]["portLevelMtls"]) == {"8000", "8443"}


def test_wrong_istio_objects_are_refused(
    kubeconfig: Path, namespace: str, istio_crds: list[str]
) -> None:
    objs = {(o["kind"], o["metadata"]["name"]): o for o in _mesh_objects(namespace)}
    peer = objs[("PeerAuthentication", "demo-gateway")]
    peer["spec"]["mtls"]["mode"] = "REQUIRED"  # not an Istio mode
    out = _send(kubeconfig, namespace, [peer], "--dry-run=server")
    assert "Unsupported value" in out and "REQUIRED" in out, out
    # Port-level modes need a selector (a CEL rule of the CRD) and a port in range.
    peer["spec"]["mtls"]["mode"] = "STRICT"
    del peer["spec"]["selector"]
    peer["spec"]["portLevelMtls"]["0"] = {"mode": "PERMISSIVE"}
    out = _send(kubeconfig, namespace, [peer], "--dry-run=server")
    assert "portLevelMtls requires selector" in out, out
    assert "port must be between 1-65535" in out, out
    policy = objs[("AuthorizationPolicy", "demo-api")]
    policy["spec"]["rule"] = policy["spec"].pop("rules")  # typo: not in the schema
    out = _send(kubeconfig, namespace, [policy], "--dry-run=server")
    assert 'unknown field "spec.rule"' in out, out
    rule = objs[("DestinationRule", "demo-api")]
    rule["spec"]["trafficPolicy"]["tls"]["mode"] = "MUTUAL_ISTIO"
    out = _send(kubeconfig, namespace, [rule], "--dry-run=server")
    assert "Unsupported value" in out and "MUTUAL_ISTIO" in out, out
