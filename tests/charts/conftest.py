"""Fixtures of the chart tests: kubeconform schemas made from the local API server."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.charts import schemas
from tests.cluster.tools import REPO_ROOT

# Reuse the integration fixtures (the CRD, the operator process) in the cluster tests here.
from tests.integration.conftest import CRD_FILE, kubectl, operator_process  # noqa: F401
from tests.waiting import wait_for


@pytest.fixture(scope="session")
def crd_installed(kubeconfig: Path) -> Path:
    """The IndexForge CRD, Established. (`kubectl wait` right after the apply can fail while
    the CRD has no status yet, so this polls instead.)"""
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    jsonpath = '{.status.conditions[?(@.type=="Established")].status}'

    def established() -> bool:
        out = kubectl(kubeconfig, "get", "crd/indexforges.indexforge.io", "-o",
                      f"jsonpath={jsonpath}", check=False)  # fmt: skip
        return out.strip() == "True"

    wait_for(established, timeout=60, what="IndexForge CRD Established")
    return CRD_FILE


@pytest.fixture(scope="session")
def kube_schemas(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A schema directory for kubeconform: built-ins from /openapi/v3, CRDs from their files."""
    root = tmp_path_factory.mktemp("kube-schemas")

    def fetch(path: str) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(kubectl(kubeconfig, "get", "--raw", path))
        return doc

    count = schemas.write_openapi_v3(root, fetch)
    assert count > 50, f"only {count} kinds in the API server's OpenAPI v3"
    crd_files = [
        *schemas.prometheus_operator_crds(),
        REPO_ROOT / "crds" / "indexforge.io_indexforges.yaml",
    ]
    for path in crd_files:
        schemas.write_crd(root, schemas.load_yaml(path))
    return root


@pytest.fixture
def namespace(api_client: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test (like tests/conftest.py's, but valid for parametrized ids)."""
    from kubernetes import client

    core: Any = client.CoreV1Api(api_client)
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())[:40].strip("-")
    name = f"t-{base}-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"indexforge.test/ns": "true"}}})
    try:
        yield name
    finally:
        core.delete_namespace(name)


@pytest.fixture
def helm_releases(kubeconfig: Path) -> Iterator[list[tuple[str, str]]]:
    """(release, namespace) pairs a test installs; any still installed are removed afterwards
    (a failed test must not leave cluster-wide objects such as ClusterRoles behind)."""
    from tests.charts.helmtools import helm

    releases: list[tuple[str, str]] = []
    yield releases
    for release, ns in releases:
        helm("uninstall", release, "-n", ns, "--ignore-not-found", "--wait", "--timeout", "2m",
             "--kubeconfig", str(kubeconfig), check=False)  # fmt: skip
