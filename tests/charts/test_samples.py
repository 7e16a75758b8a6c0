"""Each sample in manifests/samples/ reaches Ready with the operator on the local control plane,
and the static chart renders the same objects for its spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.charts.helmtools import STATIC_CHART, helm_template, render_cr
from tests.charts.parity import compare, load_stream
from tests.cluster.tools import REPO_ROOT
from tests.conftest import kubectl
from tests.waiting import wait_for

SAMPLES = sorted((REPO_ROOT / "manifests" / "samples").glob("*.yaml"))
EXPECTED = {"indexforge", "minimal", "full", "gpu", "cpu-only"}


def _indexforge(path: Path) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    return next(d for d in docs if d.get("kind") == "IndexForge")


def test_the_documented_samples_exist() -> None:
    assert {p.stem for p in SAMPLES} >= EXPECTED


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_static_chart_renders_the_sample_like_the_operator(sample: Path, tmp_path: Path) -> None:
    cr = _indexforge(sample)
    name, namespace = cr["metadata"]["name"], "samples"
    cr["metadata"]["namespace"] = namespace
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(cr.get("spec") or {}))
    cr_file = tmp_path / "cr.yaml"
    cr_file.write_text(yaml.safe_dump(cr))
    chart = helm_template(STATIC_CHART, release=name, namespace=namespace, values=[values])
    problems = compare(load_stream(chart), load_stream(render_cr(cr_file)))
    assert not problems, "\n".join(problems)


@pytest.mark.cluster
@pytest.mark.usefixtures("operator_process")
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_sample_reaches_ready(
    sample: Path, kubeconfig: Path, api_client: Any, namespace: str
) -> None:
    kubectl(kubeconfig, "label", "namespace", namespace,
            "pod-security.kubernetes.io/enforce=restricted", "--overwrite")  # fmt: skip
    kubectl(kubeconfig, "apply", "-n", namespace, "-f", str(sample))
    name = _indexforge(sample)["metadata"]["name"]
    custom: Any = client.CustomObjectsApi(api_client)

    def ready() -> dict[str, Any] | None:
        cr = custom.get_namespaced_custom_object(
            "indexforge.io", "v1alpha1", namespace, "indexforges", name)  # fmt: skip
        status = cr.get("status") or {}
        conds = {c["type"]: c for c in status.get("conditions", [])}
        ok = conds.get("Ready", {}).get("status") == "True"
        return (
            cr if ok and status.get("observedGeneration") == cr["metadata"]["generation"] else None
        )

    try:
        wait_for(ready, timeout=240, interval=1, what=f"sample {sample.stem} Ready")
    except AssertionError as err:
        cr = custom.get_namespaced_custom_object(
            "indexforge.io", "v1alpha1", namespace, "indexforges", name)  # fmt: skip
        conditions = yaml.safe_dump((cr.get("status") or {}).get("conditions"))
        raise AssertionError(f"{err}\n{conditions}") from None
