"""Start and stop a real Kubernetes control plane on loopback, without containers.

etcd, kube-apiserver (RBAC, service-account signing, PodSecurity and ServiceAccount admission),
kube-controller-manager, kube-scheduler and kwok (fake nodes, pods marked Running) run as
plain processes on free 127.0.0.1 ports. Every PID goes into ``state.json`` so ``down`` stops
exactly what ``up`` started, even from another process.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.cluster import certs, objects
from tests.cluster.tools import CONTROL_PLANE_TOOLS, REPO_ROOT, tool_path
from tests.procs import ProcessBook, StartupError, free_port, pid_alive

DEFAULT_STATE_DIR = REPO_ROOT / ".cluster"
STAGES_FILE = Path(__file__).resolve().parent / "kwok-stages.yaml"
SERVICE_CIDR = "10.96.0.0/16"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
READY_TIMEOUT_S = 90.0


class ClusterError(RuntimeError):
    """The control plane could not be brought up; the message carries the failing log's tail."""


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int

    @classmethod
    def allocate(cls) -> Ports:
        return cls(*(free_port() for _ in range(6)))


def kubeconfig(server: str, pki: Path, identity: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "indexforge-local",
                "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")},
            }
        ],
        "users": [
            {
                "name": identity,
                "user": {
                    "client-certificate": str(pki / f"{identity}.crt"),
                    "client-key": str(pki / f"{identity}.key"),
                },
            }
        ],
        "contexts": [
            {
                "name": "indexforge-local",
                "context": {"cluster": "indexforge-local", "user": identity},
            }
        ],
        "current-context": "indexforge-local",
    }


def component_commands(state: Path, ports: Ports) -> dict[str, list[str]]:
    """Command lines, in start order. Pure: paths and ports in, argv out."""
    pki = state / "pki"
    etcd_url = f"http://127.0.0.1:{ports.etcd_client}"
    peer_url = f"http://127.0.0.1:{ports.etcd_peer}"
    return {
        "etcd": [
            str(tool_path("etcd")),
            "--name=default",
            f"--data-dir={state / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}",
            # Test data only: skipping fsync makes the API server several times faster here.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ],
        "kube-apiserver": [
            str(tool_path("kube-apiserver")),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={ports.apiserver}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-account-issuer={SA_ISSUER}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--api-audiences={SA_ISSUER}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=RBAC",
            "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,"
            "DefaultStorageClass,DefaultTolerationSeconds,PodSecurity,ResourceQuota,"
            "StorageObjectInUseProtection,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,"
            "ValidatingAdmissionPolicy,OwnerReferencesPermissionEnforcement",
            "--allow-privileged=true",
            "--profiling=false",
            "--v=1",
        ],
        "kube-controller-manager": [
            str(tool_path("kube-controller-manager")),
            f"--kubeconfig={state / 'kubeconfig-controller-manager'}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports.controller_manager}",
            "--leader-elect=false",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--use-service-account-credentials=true",
            # Faster GC/status loops keep tests snappy; defaults are tuned for big clusters.
            "--concurrent-gc-syncs=20",
            # HPAs lift new Deployments to minReplicas on their first sync: 15 s by default.
            "--horizontal-pod-autoscaler-sync-period=5s",
            "--profiling=false",
            "--v=1",
        ],
        "kube-scheduler": [
            str(tool_path("kube-scheduler")),
            f"--kubeconfig={state / 'kubeconfig-scheduler'}",
            f"--authentication-kubeconfig={state / 'kubeconfig-scheduler'}",
            f"--authorization-kubeconfig={state / 'kubeconfig-scheduler'}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports.scheduler}",
            "--leader-elect=false",
            "--profiling=false",
            "--v=1",
        ],
        "kwok": [
            str(tool_path("kwok")),
            f"--kubeconfig={state / 'kubeconfig'}",
            f"--config={STAGES_FILE}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={objects.KWOK_ANNOTATION}=fake",
            f"--server-address=127.0.0.1:{ports.kwok}",
            "--node-ip=127.0.0.1",
            "--cidr=10.244.0.1/16",
            "--node-lease-duration-seconds=40",
        ],
    }


# --- readiness -----------------------------------------------------------------------------


def _admin_ssl_context(pki: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return ctx


def _http_ok(url: str, ctx: ssl.SSLContext | None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=ctx) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def kubectl(kubeconfig_path: Path, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig_path}", *args],
        input=stdin, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    if proc.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def _nodes_ready(kcfg: Path) -> bool:
    try:
        out = kubectl(kcfg, "get", "nodes", "-o", "json")
    except ClusterError:
        return False
    items = json.loads(out)["items"]
    want = len(objects.CPU_NODES) + len(objects.GPU_NODES)
    ready = [
        n
        for n in items
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in n.get("status", {}).get("conditions", [])
        )
    ]
    return len(ready) >= want


def _default_sa_exists(kcfg: Path) -> bool:
    try:
        kubectl(kcfg, "get", "serviceaccount", "default", "-n", "default", "-o", "name")
    except ClusterError:
        return False
    return True


# --- up / down -----------------------------------------------------------------------------


def read_state(state: Path) -> dict[str, Any]:
    return ProcessBook(state).record


def up(state: Path = DEFAULT_STATE_DIR) -> Path:
    """Bring the control plane up; return the admin kubeconfig path once nodes are Ready."""
    if ProcessBook(state).running():
        down(state)
    for sub in ("pki", "logs", "etcd", "volumes"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    for stale in (state / "etcd").iterdir():  # every `up` starts from an empty cluster
        subprocess.run(["rm", "-rf", str(stale)], check=True)
    missing = [t for t in CONTROL_PLANE_TOOLS if not tool_path(t).exists()]
    if missing:
        raise ClusterError(f"missing tools {missing}: run `make tools`")

    started = time.monotonic()
    deadline = started + READY_TIMEOUT_S
    pki = state / "pki"
    certs.generate(pki)
    ports = Ports.allocate()
    server = f"https://127.0.0.1:{ports.apiserver}"
    for identity, fname in (
        ("admin", "kubeconfig"),
        ("controller-manager", "kubeconfig-controller-manager"),
        ("scheduler", "kubeconfig-scheduler"),
    ):
        (state / fname).write_text(json.dumps(kubeconfig(server, pki, identity), indent=2))
    admin_kcfg = state / "kubeconfig"

    commands = component_commands(state, ports)
    book = ProcessBook(state)
    book.record = {"ports": ports.__dict__, "pids": {}, "markers": {}, "server": server}
    try:
        book.spawn("etcd", commands["etcd"])
        book.wait(
            "etcd",
            lambda: _http_ok(f"http://127.0.0.1:{ports.etcd_client}/health", None),
            deadline=deadline,
        )
        book.spawn("kube-apiserver", commands["kube-apiserver"])
        ctx = _admin_ssl_context(pki)
        book.wait(
            "kube-apiserver /readyz", lambda: _http_ok(f"{server}/readyz", ctx), deadline=deadline
        )
        for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
            book.spawn(name, commands[name])
        book.spawn(
            "provisioner",
            [
                sys.executable, "-m", "tests.cluster", "provisioner", str(admin_kcfg),
                str(state / "volumes"),
            ],
            marker="tests.cluster provisioner",
        )  # fmt: skip
        bootstrap = {"apiVersion": "v1", "kind": "List", "items": objects.bootstrap_objects()}
        kubectl(
            admin_kcfg, "apply", "--server-side", "--field-manager=indexforge-test-harness",
            "-f", "-", stdin=json.dumps(bootstrap),
        )  # fmt: skip
        book.wait("nodes Ready", lambda: _nodes_ready(admin_kcfg), deadline=deadline)
        book.wait(
            "controller-manager (default ServiceAccount)",
            lambda: _default_sa_exists(admin_kcfg),
            deadline=deadline,
        )
    except (StartupError, ClusterError) as exc:
        down(state)
        raise ClusterError(str(exc)) from None
    except Exception:
        down(state)
        raise
    book.record["ready_seconds"] = round(time.monotonic() - started, 1)
    book.save()
    return admin_kcfg


def start_extra(
    state: Path, name: str, argv: list[str], *, env: dict[str, str] | None = None
) -> int:
    """Start another process (e.g. the operator) under this cluster's bookkeeping.

    ``down`` then stops it first, before the control plane it talks to.
    """
    book = ProcessBook(state)
    if not book.running():
        raise ClusterError("no local control plane is running")
    marker = " ".join(argv[1:3]) if len(argv) > 2 else argv[0]
    proc = book.spawn(name, argv, marker=marker, env={**os.environ, **(env or {})})
    return proc.pid


def restart_apiserver(state: Path, *, pause_s: float = 0.0, timeout_s: float = 60.0) -> None:
    """Stop the kube-apiserver (SIGTERM), stay down ``pause_s``, start it again on its port.

    For chaos tests: clients must ride out the outage on their own.
    """
    book = ProcessBook(state)
    pid = book.running().get("kube-apiserver")
    if pid is None:
        raise ClusterError("no kube-apiserver of this control plane is running")
    os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + 30
    while pid_alive(pid) and time.monotonic() < end:
        time.sleep(0.1)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    time.sleep(pause_s)
    ports = Ports(**book.record["ports"])
    book.spawn("kube-apiserver", component_commands(state, ports)["kube-apiserver"])
    ctx = _admin_ssl_context(state / "pki")
    book.wait(
        "kube-apiserver /readyz",
        lambda: _http_ok(f"{book.record['server']}/readyz", ctx),
        deadline=time.monotonic() + timeout_s,
        watch=["kube-apiserver"],
    )


def down(state: Path = DEFAULT_STATE_DIR, *, grace_s: float = 10.0) -> list[str]:
    """Stop every process ``up`` (or ``start_extra``) recorded, newest first."""
    return ProcessBook(state).stop_all(grace_s=grace_s)
