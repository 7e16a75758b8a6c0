"""`helm template` output of both charts validates with kubeconform, strictly, offline.

Schemas come from the local API server's OpenAPI v3 and from CRD files (prometheus-operator's
Go module, crds/, the RabbitMQ cluster operator's and KEDA's CRDs from ../shared/reference) —
nothing is downloaded from schema sites. Every kind must have a schema.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.charts.helmtools import (
    KUBECONFORM,
    OPERATOR_CHART,
    OPERATOR_VARIANTS,
    STATIC_CHART,
    STATIC_VARIANTS,
    helm_template,
    require,
    run,
)
from tests.charts.parity import load_stream
from tests.charts.schemas import LOCATION_TEMPLATE

pytestmark = pytest.mark.cluster


def kubeconform(schema_dir: Path, manifests: str) -> dict[str, Any]:
    out = run(
        [str(require(KUBECONFORM)), "-strict", "-summary", "-output", "json",
         "-schema-location", f"{schema_dir}/{LOCATION_TEMPLATE}", "-"],
        input=manifests, check=False,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out[out.index("{") :])
    return result


def _assert_valid(result: dict[str, Any]) -> None:
    summary = result["summary"]
    problems = [r for r in result.get("resources") or [] if r.get("status") != "statusValid"]
    detail = json.dumps(problems, indent=1)[:6000]
    assert not problems and summary["invalid"] == 0 and summary["errors"] == 0, detail
    assert summary["valid"] > 0 and summary["skipped"] == 0


@pytest.mark.parametrize("prometheus_operator", [False, True], ids=["standalone", "prom-operator"])
@pytest.mark.parametrize(
    "values", [None, *STATIC_VARIANTS], ids=lambda p: p.name if p else "defaults"
)
def test_static_chart_validates(
    kube_schemas: Path, values: Path | None, prometheus_operator: bool
) -> None:
    manifests = helm_template(
        STATIC_CHART, values=[values] if values else [], prometheus_operator=prometheus_operator
    )
    _assert_valid(kubeconform(kube_schemas, manifests))


MESSAGING_VARIANTS = [p for p in STATIC_VARIANTS if p.name.startswith("messaging")]


@pytest.mark.parametrize("values", MESSAGING_VARIANTS, ids=lambda p: p.name)
def test_static_chart_validates_with_rabbitmq_and_keda_crds(
    kube_schemas: Path, values: Path
) -> None:
    """With the RabbitMQ cluster operator's and KEDA's APIs served: RabbitmqCluster,
    ScaledObject and TriggerAuthentication against their real CRDs."""
    manifests = helm_template(STATIC_CHART, values=[values], rabbitmq_cluster=True, keda=True)
    _assert_valid(kubeconform(kube_schemas, manifests))
    kinds = {o["kind"] for o in load_stream(manifests)}
    assert kinds & {"RabbitmqCluster", "ScaledObject"}, kinds


def test_messaging_variants_cover_every_integration_kind() -> None:
    rendered = "\n---\n".join(
        helm_template(STATIC_CHART, values=[v], rabbitmq_cluster=True, keda=True)
        for v in MESSAGING_VARIANTS
    )
    kinds = {o["kind"] for o in load_stream(rendered)}
    assert {"RabbitmqCluster", "ScaledObject", "TriggerAuthentication", "StatefulSet"} <= kinds


def test_static_chart_validates_with_an_existing_credentials_secret(kube_schemas: Path) -> None:
    """credentials.existingSecret (Kong's config in an env var, references to that Secret) and
    the Secret `indexforge credentials` prints for it."""
    full = STATIC_CHART / "ci" / "full-values.yaml"
    secret = run([sys.executable, "-m", "indexforge_operator.cli", "credentials",
                  "--release", "demo", "--namespace", "ns1", "-f", str(full)])  # fmt: skip
    manifests = helm_template(
        STATIC_CHART, values=[full], set_values=["credentials.existingSecret=demo-credentials"]
    )
    _assert_valid(kubeconform(kube_schemas, f"{manifests}\n{secret}"))


@pytest.mark.parametrize(
    "values", [None, *OPERATOR_VARIANTS], ids=lambda p: p.name if p else "defaults"
)
def test_operator_chart_validates(kube_schemas: Path, values: Path | None) -> None:
    manifests = helm_template(
        OPERATOR_CHART, values=[values] if values else [], set_values=["namespace.create=true"],
        extra=["--include-crds"],
    )  # fmt: skip
    _assert_valid(kubeconform(kube_schemas, manifests))


def test_kubeconform_rejects_a_broken_object(kube_schemas: Path) -> None:
    manifests = helm_template(STATIC_CHART).replace(
        "revisionHistoryLimit: 5", "revisionHistoryLimit: five", 1
    )
    manifests += "\n---\napiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {portz: []}\n"
    result = kubeconform(kube_schemas, manifests)
    assert result["summary"]["invalid"] == 2, result
