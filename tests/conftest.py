"""Shared fixtures: the cluster (local control plane, or whatever KUBECONFIG points at)."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.operator_runner import OperatorProcess
from tests.waiting import wait_for

REPO_ROOT = Path(__file__).resolve().parents[1]
CRD_FILE = REPO_ROOT / "crds" / "indexforge.io_indexforges.yaml"
# The production default: drift and spec changes must be repaired by watch events within
# seconds, so no test may depend on the periodic resync.
RESYNC_SECONDS = 600
# How long a watch-driven repair may take in the tests (the target is ~2-5 s).
REACTION_SECONDS = 15


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
def operator_identity(
    kubeconfig: Path, crd_installed: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A kubeconfig of the operator's own ServiceAccount, with install.yaml's RBAC applied."""
    from tests import operator_identity

    operator_identity.install_rbac(kubeconfig)
    out = tmp_path_factory.mktemp("identity") / "operator-kubeconfig"
    return operator_identity.service_account_kubeconfig(kubeconfig, out)


@pytest.fixture(scope="session")
def operator_process(
    operator_identity: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The real operator (kopf) for the whole session, as its ServiceAccount (never admin),
    with leader election on like the chart's replicas; tests that need it stopped call
    ``stop()`` and ``start()`` again."""
    from tests.operator_identity import NAMESPACE

    runner = OperatorProcess(
        kubeconfig=operator_identity,
        workdir=tmp_path_factory.mktemp("operator"),
        env={
            "INDEXFORGE_RESYNC_SECONDS": str(RESYNC_SECONDS),
            "INDEXFORGE_LEADER_ELECTION_NAMESPACE": NAMESPACE,
        },
    ).start()
    try:
        yield runner
    finally:
        runner.stop()
