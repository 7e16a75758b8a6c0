"""Shared fixtures: the cluster (local control plane, or whatever KUBECONFIG points at)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


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

    client = config.new_client_from_config(config_file=str(kubeconfig))
    yield client
    client.close()


@pytest.fixture
def namespace(api_client, request: pytest.FixtureRequest) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh namespace per test, deleted afterwards (without waiting for finalization)."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    base = request.node.name.lower().replace("_", "-")[:40].strip("-")
    name = f"t-{base}-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"indexforge.test/ns": "true"}}})
    try:
        yield name
    finally:
        core.delete_namespace(name)
