"""Shared fixtures: the cluster (local control plane, or whatever KUBECONFIG points at)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.procs import free_port
from tests.waiting import wait_for

REPO_ROOT = Path(__file__).resolve().parents[1]
CRD_FILE = REPO_ROOT / "crds" / "indexforge.io_indexforges.yaml"
# Short resync so drift tests run in seconds; production default is 30 s.
RESYNC_SECONDS = 3


@pytest.fixture(scope="session")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Admin kubeconfig for the test cluster.

    With KUBECONFIG set (kind, or `make cluster-up`), the tests use that cluster as it is.
    Otherwise the local control plane is started once for the session and stopped after it.
    """
    existing = os.environ.get("KUBECONFIG")
    if existing:
        yield Path(existing)
        return
    from tests.cluster import controlplane, tools

    missing = [t for t in tools.CONTROL_PLANE_TOOLS if not tools.tool_path(t).exists()]
    if missing:
        pytest.fail(f"control-plane tools missing {missing}: run `make tools` first")
    state = tmp_path_factory.mktemp("cluster")
    path = controlplane.up(state)
    try:
        yield path
    finally:
        controlplane.down(state)


@pytest.fixture(scope="session")
def api_client(kubeconfig: Path):  # type: ignore[no-untyped-def]
    from kubernetes import config

    client = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    yield client
    client.close()


@pytest.fixture
def namespace(api_client, request: pytest.FixtureRequest) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh namespace per test, deleted afterwards (without waiting for finalization)."""
    from kubernetes import client

    core: Any = client.CoreV1Api(api_client)  # plain dicts in, like everywhere in these tests
    # Parametrized ids carry brackets and dots: keep a valid DNS label.
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())[:40].strip("-")
    name = f"t-{base}-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"indexforge.test/ns": "true"}}})
    try:
        yield name
    finally:
        core.delete_namespace(name)


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", *args],
        input=stdin, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout if check else proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def crd_installed(kubeconfig: Path) -> Path:
    """The IndexForge CRD, Established (polled: right after the apply it has no status yet)."""
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    jsonpath = '{.status.conditions[?(@.type=="Established")].status}'

    def established() -> bool:
        out = kubectl(
            kubeconfig, "get", "crd/indexforges.indexforge.io", "-o", f"jsonpath={jsonpath}",
            check=False,
        )  # fmt: skip
        return out.strip() == "True"

    wait_for(established, timeout=60, what="IndexForge CRD Established")
    return CRD_FILE


@pytest.fixture(scope="session")
def operator_process(
    kubeconfig: Path, crd_installed: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """The real operator (kopf) as one subprocess for the whole session; yields its log."""
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "INDEXFORGE_RESYNC_SECONDS": str(RESYNC_SECONDS),
    }
    port, metrics_port = free_port(), free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "indexforge_operator", "--liveness",
             f"http://127.0.0.1:{port}/healthz", "--metrics-address", "127.0.0.1",
             "--metrics-port", str(metrics_port)],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT,
        )  # fmt: skip
    try:

        def healthy() -> bool:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        wait_for(healthy, timeout=60, what="operator liveness endpoint")
        (log_path.parent / "metrics-url").write_text(f"http://127.0.0.1:{metrics_port}/metrics")
        yield log_path
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
