"""The operator switches mesh mode with Istio's CRDs on the local control plane.

The real operator, under its chart's RBAC, sees Istio's CRDs (read from ../shared/reference)
appear: it creates the PeerAuthentications, AuthorizationPolicies and DestinationRules and
labels the pod templates for injection; with `mesh.mode: none` the pods opt out and the Istio
objects are pruned; when the CRDs go, the operator stays alive and the instance Ready.
Forcing `mesh.mode: istio` without the CRDs is Degraded with the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from indexforge_operator.builders.mesh import INJECT
from tests.conftest import kubectl
from tests.operator_runner import OperatorProcess
from tests.waiting import wait_for

from .test_mesh_crds import WANTED
from .test_operator import _apply, _condition, _cr, _sample, _wait_ready

QUIET = {"monitoring": {"enabled": False}}


def _istio_crds() -> list[dict[str, Any]]:
    from tests import reference

    return [
        reference.load_crd(p)
        for p in reference.crd_files("istio")
        if p.name.split(".")[0] in WANTED
    ]


def _custom(api_client: Any, namespace: str, group: str, plural: str) -> set[str]:
    items = client.CustomObjectsApi(api_client).list_namespaced_custom_object(
        group, "v1", namespace, plural
    )["items"]
    return {i["metadata"]["name"] for i in items}


def _inject_label(api_client: Any, namespace: str, deployment: str) -> str | None:
    dep = client.AppsV1Api(api_client).read_namespaced_deployment(deployment, namespace)
    labels: dict[str, str] = dep.spec.template.metadata.labels or {}
    return labels.get(INJECT)


def test_mesh_mode_follows_istios_crds(
    api_client: Any, kubeconfig: Path, namespace: str, operator_process: OperatorProcess
) -> None:
    _apply(kubeconfig, _sample(namespace, **QUIET))
    _wait_ready(api_client, namespace, "demo", timeout=180)
    assert _inject_label(api_client, namespace, "demo-api") is None

    crds = _istio_crds()
    assert len(crds) == 3
    kubectl(kubeconfig, "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(crds))
    try:
        wait_for(
            lambda: (
                "demo-api"
                in _custom(api_client, namespace, "security.istio.io", "peerauthentications")
                and "demo-api"
                in _custom(api_client, namespace, "security.istio.io", "authorizationpolicies")
                and "demo-api"
                in _custom(api_client, namespace, "networking.istio.io", "destinationrules")
            ),
            timeout=90,
            what="Istio objects created after Istio's CRDs appeared",
        )
        wait_for(
            lambda: _inject_label(api_client, namespace, "demo-api") == "true",
            timeout=60,
            what="the API's pod template labelled for injection",
        )
        policy = client.CustomObjectsApi(api_client).get_namespaced_custom_object(
            "security.istio.io", "v1", namespace, "authorizationpolicies", "demo-api"
        )
        (rule,) = policy["spec"]["rules"]
        assert rule["from"][0]["source"]["principals"] == [
            f"cluster.local/ns/{namespace}/sa/demo-gateway"
        ]
        # Switched off while Istio stays: the pods opt out, the Istio objects are pruned.
        _apply(kubeconfig, _sample(namespace, **QUIET, mesh={"mode": "none"}))
        wait_for(
            lambda: _inject_label(api_client, namespace, "demo-api") == "false",
            timeout=120,
            what="the API's pod template opted out after mesh.mode none",
        )
        wait_for(
            lambda: not _custom(api_client, namespace, "security.istio.io", "peerauthentications"),
            timeout=60,
            what="PeerAuthentications pruned",
        )
        assert operator_process.alive(), operator_process.log_tail()
    finally:
        kubectl(kubeconfig, "delete", "-f", "-", "--timeout=120s",
                stdin=yaml.safe_dump_all(crds), check=False)  # fmt: skip
    # Istio gone: the operator (still alive) keeps the instance Ready.
    _wait_ready(api_client, namespace, "demo", timeout=180)
    assert operator_process.alive(), operator_process.log_tail()


def test_forcing_istio_without_its_crds_degrades_with_the_reason(
    api_client: Any, kubeconfig: Path, namespace: str, operator_process: OperatorProcess
) -> None:
    _apply(kubeconfig, _sample(namespace, **QUIET, mesh={"mode": "istio"}))

    def degraded() -> dict[str, Any] | None:
        cr = _cr(api_client, namespace, "demo")
        condition = _condition(cr, "Degraded")
        return cr if condition and condition["status"] == "True" else None

    try:
        cr = wait_for(degraded, timeout=90, what="Degraded for the missing Istio CRDs")
    except AssertionError as exc:
        status = _cr(api_client, namespace, "demo").get("status")
        raise AssertionError(f"{exc}\nstatus: {status}\n{operator_process.log_tail()}") from exc
    condition = _condition(cr, "Degraded")
    assert condition is not None
    assert condition["reason"] == "IstioCRDMissing", condition
    assert "peerauthentications.security.istio.io" in condition["message"]
    # The rest is deployed, labelled for the mesh that will come.
    wait_for(
        lambda: _inject_label(api_client, namespace, "demo-api") == "true",
        timeout=60,
        what="the API Deployment applied with the injection label",
    )
