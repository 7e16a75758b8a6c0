"""Run the operator as it runs in a cluster: with the chart's ServiceAccount and RBAC, not as admin.

``install_rbac`` applies the RBAC part of ``manifests/install.yaml`` (cluster-wide mode) or of
``helm template`` with ``watchNamespaces`` (namespaced mode) — never the Deployment, whose
container no runtime here would start. ``service_account_kubeconfig`` writes a kubeconfig
holding a real token from the TokenRequest API for that ServiceAccount.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.cluster.controlplane import kubectl

REPO = Path(__file__).resolve().parents[1]
INSTALL = REPO / "manifests" / "install.yaml"
OPERATOR_CHART = REPO / "charts" / "indexforge-operator"
HELM = REPO / ".tools" / "bin" / "helm"
NAMESPACE = "indexforge-system"
SERVICE_ACCOUNT = "indexforge-operator"
# What the operator process needs of the install: identity, RBAC and its namespace.
IDENTITY_KINDS = ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
                  "RoleBinding")  # fmt: skip


def identity_objects(docs: Iterable[dict[str, Any] | None]) -> list[dict[str, Any]]:
    return [d for d in docs if d and d.get("kind") in IDENTITY_KINDS]


def rendered_install(
    watch_namespaces: Sequence[str] = (), *, service_account: str = SERVICE_ACCOUNT
) -> list[dict[str, Any]]:
    """install.yaml (cluster-wide), or the chart rendered for these namespaces under its own
    names (so both installs can coexist in one test cluster)."""
    if not watch_namespaces:
        return identity_objects(yaml.safe_load_all(INSTALL.read_text()))
    text = subprocess.run(
        [str(HELM), "template", service_account, str(OPERATOR_CHART), "--namespace", NAMESPACE,
         "--set", f"fullnameOverride={service_account}",
         "--set", "watchNamespaces={" + ",".join(watch_namespaces) + "}"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return identity_objects(yaml.safe_load_all(text))


def install_rbac(
    kubeconfig: Path,
    watch_namespaces: Sequence[str] = (),
    *,
    service_account: str = SERVICE_ACCOUNT,
) -> None:
    objs = rendered_install(watch_namespaces, service_account=service_account)
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": objs})
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts",
             "--field-manager=indexforge-test", "-f", "-", stdin=body)  # fmt: skip


def service_account_kubeconfig(
    admin: Path, out: Path, *, seconds: int = 4 * 3600, service_account: str = SERVICE_ACCOUNT
) -> Path:
    """A kubeconfig for the operator's ServiceAccount with a TokenRequest token."""
    request = json.dumps(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
         "spec": {"expirationSeconds": seconds}}
    )  # fmt: skip
    raw = kubectl(
        admin, "create", "--raw",
        f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{service_account}/token",
        "-f", "-", stdin=request,
    )  # fmt: skip
    token = json.loads(raw)["status"]["token"]
    config = yaml.safe_load(admin.read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    cluster = next(c for c in config["clusters"] if c["name"] == context["context"]["cluster"])
    cluster_spec = dict(cluster["cluster"])
    ca_file = cluster_spec.pop("certificate-authority", None)
    if ca_file:  # inline it: the kubeconfig may be read from another directory
        cluster_spec["certificate-authority-data"] = base64.b64encode(
            Path(ca_file).read_bytes()
        ).decode()
    sa_config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": cluster_spec}],
        "users": [{"name": service_account, "user": {"token": token}}],
        "contexts": [{"name": "op", "context": {"cluster": "cluster", "user": service_account}}],
        "current-context": "op",
    }
    out.write_text(json.dumps(sa_config, indent=2))
    out.chmod(0o600)
    return out
