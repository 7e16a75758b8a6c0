"""Fixtures of the chart tests: kubeconform schemas made from the local API server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import reference
from tests.charts import schemas
from tests.cluster.tools import REPO_ROOT
from tests.conftest import kubectl


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
    # The AlertmanagerConfig CRD from the reference data (a bare `=` in it needs load_crd).
    for path in reference.crd_files("prometheus-operator"):
        if path.name.endswith("_alertmanagerconfigs.yaml"):
            schemas.write_crd(root, reference.load_crd(path))
    # Messaging's optional integrations: RabbitmqCluster, ScaledObject, TriggerAuthentication.
    for group, files in (
        ("rabbitmq", ("rabbitmq.com_rabbitmqclusters.yaml",)),
        ("keda", ("keda.sh_scaledobjects.yaml", "keda.sh_triggerauthentications.yaml")),
        # secrets.provider externalSecrets.
        ("external-secrets", ("external-secrets.io_externalsecrets.yaml",
                              "external-secrets.io_secretstores.yaml")),
    ):  # fmt: skip
        found = {p.name: p for p in reference.crd_files(group)}
        missing = set(files) - set(found)
        assert not missing, f"reference CRDs missing: {sorted(missing)}"
        for name in files:
            schemas.write_crd(root, reference.load_crd(found[name]))
    return root


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
