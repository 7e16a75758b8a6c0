"""secrets.provider externalSecrets against External Secrets' real CRDs on the local API server.

The SecretStore/ExternalSecret CRDs are read from `../shared/reference/crds/external-secrets/`
(never copied). Every object `build_all` produces for them is sent as a server-side dry-run,
then created, with strict field validation; wrong ones are refused. The real operator, under
its chart's RBAC, reports ExternalSecretsCRDMissing without the CRDs (and creates no Secret
holding a template), then creates the ExternalSecrets once the CRDs exist.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from indexforge_operator.builders import build_all
from indexforge_operator.builders.external_secrets import KINDS, checks
from indexforge_operator.generated import GeneratedSecrets
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec
from tests import reference
from tests.conftest import kubectl
from tests.operator_runner import OperatorProcess
from tests.waiting import wait_for

from .test_operator import _apply, _condition, _cr, _sample

pytestmark = pytest.mark.cluster
WANTED = ("externalsecrets", "secretstores")
SPEC = {
    "secrets": {
        "provider": "externalSecrets",
        "vault": {
            "address": "https://vault.vault.svc:8200",
            "caSecretRef": {"name": "vault-ca", "key": "ca.crt"},
            "namespace": "team-a",
        },
    },
    "gateway": {"keyAuth": {"enabled": True, "consumers": [{"username": "alice"}]}},
    "messaging": {"enabled": True},
}


def _crds() -> list[dict[str, Any]]:
    crds = [
        reference.load_crd(p)
        for p in reference.crd_files("external-secrets")
        if p.name.split(".")[1].split("_")[-1] in WANTED
    ]
    assert len(crds) == 2, [c["metadata"]["name"] for c in crds]
    return crds


def _install(kubeconfig: Path, crds: list[dict[str, Any]]) -> list[str]:
    kubectl(kubeconfig, "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(crds))
    names = [c["metadata"]["name"] for c in crds]

    def established() -> bool:
        items = json.loads(kubectl(kubeconfig, "get", "crd", *names, "-o", "json"))["items"]
        return len(items) == len(names) and all(
            any(c["type"] == "Established" and c["status"] == "True"
                for c in item.get("status", {}).get("conditions", []))
            for item in items
        )  # fmt: skip

    wait_for(established, timeout=60, what="External Secrets CRDs established")
    return names


@pytest.fixture
def es_crds(kubeconfig: Path) -> Iterator[list[str]]:
    names = _install(kubeconfig, _crds())
    try:
        yield names
    finally:
        kubectl(kubeconfig, "delete", "crd", *names, "--timeout=120s", check=False)


def _objects(namespace: str, spec: dict[str, Any] = SPEC) -> list[dict[str, Any]]:
    objs = build_all(
        IndexForgeSpec.model_validate(spec),
        Names(instance="demo", namespace=namespace),
        secrets=GeneratedSecrets(),
        prometheus_operator=False,
        external_secrets=True,
    )
    return [o for o in objs if o["kind"] in KINDS]


def _send(kubeconfig: Path, namespace: str, objs: list[dict[str, Any]], *dry: str) -> str:
    return kubectl(
        kubeconfig, "create", "-n", namespace, "--validate=strict", *dry, "-f", "-",
        stdin=yaml.safe_dump_all(objs), check=False,
    )  # fmt: skip


def test_every_external_secrets_object_passes_the_real_schemas(
    kubeconfig: Path, namespace: str, es_crds: list[str]
) -> None:
    objs = _objects(namespace)
    kinds = sorted(o["kind"] for o in objs)
    # internal-auth, gateway config, consumers, Grafana admin, the store.
    assert kinds.count("ExternalSecret") == 4 and kinds.count("SecretStore") == 1, kinds
    dry = kubectl(
        kubeconfig, "apply", "-n", namespace, "--server-side", "--dry-run=server",
        "--validate=strict", "--field-manager=indexforge-operator", "-f", "-",
        stdin=yaml.safe_dump_all(objs), check=False,
    )  # fmt: skip
    assert dry.count("serverside-applied (server dry run)") == len(objs), dry
    out = _send(kubeconfig, namespace, objs)
    assert out.count("created") == len(objs), out
    stored = json.loads(
        kubectl(kubeconfig, "get", "-n", namespace, "externalsecrets", "demo-internal-auth",
                "-o", "json")
    )  # fmt: skip
    # Stored as built: the value check (external_secrets.checks), then the value.
    password = '{{ index . "rabbitmq-password" }}'
    assert stored["spec"]["target"]["template"]["data"]["rabbitmq-password"] == (
        checks(password) + password
    )
    # An existing store instead of ours: no SecretStore, refs to that store.
    store_ref = {"name": "shared", "kind": "ClusterSecretStore"}
    ref_spec = {
        **SPEC,
        "secrets": {"provider": "externalSecrets", "externalSecrets": {"storeRef": store_ref}},
    }
    others = _objects(namespace, ref_spec)
    assert {o["kind"] for o in others} == {"ExternalSecret"}
    for obj in others:
        obj["metadata"]["name"] += "-ref"
    out = _send(kubeconfig, namespace, others, "--dry-run=server")
    assert out.count("created (server dry run)") == len(others), out


def test_wrong_external_secrets_objects_are_refused(
    kubeconfig: Path, namespace: str, es_crds: list[str]
) -> None:
    objs = {(o["kind"], o["metadata"]["name"]): o for o in _objects(namespace)}
    store = objs[("SecretStore", "demo-secrets")]
    store["spec"]["provider"]["vault"]["version"] = "v3"
    out = _send(kubeconfig, namespace, [store], "--dry-run=server")
    assert "Unsupported value" in out and "v3" in out, out
    es = objs[("ExternalSecret", "demo-internal-auth")]
    es["spec"]["target"]["creationPolicy"] = "Sometimes"
    out = _send(kubeconfig, namespace, [es], "--dry-run=server")
    assert "Unsupported value" in out, out


def test_operator_reports_the_missing_crd_then_creates_the_external_secrets(
    api_client: Any, kubeconfig: Path, namespace: str, operator_process: OperatorProcess
) -> None:
    spec = {"monitoring": {"enabled": False}, "secrets": SPEC["secrets"]}
    _apply(kubeconfig, _sample(namespace, **spec))

    def degraded() -> dict[str, Any] | None:
        cond = _condition(_cr(api_client, namespace, "demo"), "Degraded")
        return cond if cond and cond["reason"] == "ExternalSecretsCRDMissing" else None

    try:
        cond = wait_for(degraded, timeout=90, what="Degraded ExternalSecretsCRDMissing")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{operator_process.log_tail()}") from exc
    assert "externalsecrets.external-secrets.io" in cond["message"]
    core = client.CoreV1Api(api_client)
    # No Secret with a template where a password should be.
    assert "demo-internal-auth" not in {
        s.metadata.name for s in core.list_namespaced_secret(namespace).items
    }

    names = _install(kubeconfig, _crds())
    try:
        custom = client.CustomObjectsApi(api_client)

        def created() -> set[str]:
            items = custom.list_namespaced_custom_object(
                "external-secrets.io", "v1", namespace, "externalsecrets"
            )["items"]
            return {i["metadata"]["name"] for i in items}

        wait_for(
            lambda: {"demo-internal-auth", "demo-gateway-config"} <= created(),
            timeout=90, what="the operator's ExternalSecrets",
        )  # fmt: skip

        def store() -> dict[str, Any] | None:
            items = custom.list_namespaced_custom_object(
                "external-secrets.io", "v1", namespace, "secretstores"
            )["items"]
            return next((i for i in items if i["metadata"]["name"] == "demo-secrets"), None)

        # Its CRD may be established a moment after the ExternalSecret's: a retry creates it.
        found = wait_for(store, timeout=90, what="the operator's SecretStore")
        owner = found["metadata"]["ownerReferences"][0]
        assert owner["kind"] == "IndexForge" and owner["name"] == "demo"
        _sync_failure_is_reported_then_clears(api_client, namespace)
        assert operator_process.alive(), operator_process.log_tail()
    finally:
        kubectl(kubeconfig, "delete", "crd", *names, "--timeout=120s", check=False)


def _sync_failure_is_reported_then_clears(api_client: Any, namespace: str) -> None:
    """External Secrets Operator is not running here, so its status writes are played through
    the status subresource, the way ESO reports a wrong path or a denied read."""
    custom = client.CustomObjectsApi(api_client)

    def report(status: str, reason: str, message: str) -> None:
        condition = {"type": "Ready", "status": status, "reason": reason, "message": message,
                     "lastTransitionTime": "2026-12-03T00:00:00Z"}  # fmt: skip
        custom.patch_namespaced_custom_object_status(
            "external-secrets.io", "v1", namespace, "externalsecrets", "demo-internal-auth",
            {"status": {"conditions": [condition]}},
        )  # fmt: skip

    report("False", "SecretSyncedError", "could not get secret data from provider")
    expected = "ExternalSecret/demo-internal-auth: SecretSyncedError: could not get secret data"

    def not_synced(want: bool) -> bool:
        cond = _condition(_cr(api_client, namespace, "demo"), "Degraded") or {}
        return (expected in cond.get("message", "")) is want

    wait_for(lambda: not_synced(True), timeout=60, what="Degraded ExternalSecretNotSynced")
    report("True", "SecretSynced", "secret synced")
    wait_for(lambda: not_synced(False), timeout=60, what="the ExternalSecret finding cleared")
