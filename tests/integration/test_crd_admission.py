"""The generated CRD, installed in a real API server, rejects bad IndexForges at admission.

Each case is a server-side dry run: the API server runs schema validation and the CEL rules
exactly as for a real create, and the test checks the user sees the rule's message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import admission_cases
from tests.conftest import kubectl

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("crd_installed")]


def _cr(namespace: str, spec: dict[str, Any], name: str = "bad") -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "indexforge.io/v1alpha1",
            "kind": "IndexForge",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


def _dry_run(kubeconfig: Path, namespace: str, spec: dict[str, Any], name: str = "bad") -> str:
    return kubectl(
        kubeconfig, "apply", "--dry-run=server", "-f", "-", stdin=_cr(namespace, spec, name),
        check=False,
    )  # fmt: skip


BAD_SPECS: list[tuple[str, dict[str, Any], str]] = [
    ("wrong type", {"api": {"replicas": "two"}}, "spec.api.replicas"),
    ("negative replicas", {"ml": {"replicas": -1}}, "spec.ml.replicas"),
    ("batch size over the bound", {"ml": {"batchSize": 100000}}, "spec.ml.batchSize"),
    ("bad enum", {"deletionPolicy": "Sometimes"}, "spec.deletionPolicy"),
    ("bad redis policy", {"redis": {"app": {"maxmemoryPolicy": "random"}}}, "maxmemoryPolicy"),
    (
        "autoscaling min > max",
        {"api": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}},
        "minReplicas must be less than or equal to maxReplicas",
    ),
    (
        "gpu on with zero GPUs",
        {"ml": {"gpu": {"enabled": True, "count": 0}}},
        "spec.ml.gpu",
    ),
    (
        "malformed GPU resource name",
        {"ml": {"gpu": {"enabled": True, "resourceName": "gpu!!"}}},
        "spec.ml.gpu.resourceName",
    ),
    ("inline sentry DSN", {"sentry": {"enabled": True, "dsn": "https://k@o.example/1"}}, "dsn"),
    ("over-long image", {"api": {"image": "x" * 600}}, "spec.api.image"),
    ("unknown field", {"api": {"replicaz": 2}}, "replicaz"),
    ("rate limit zero", {"gateway": {"rateLimiting": {"apiPerMinute": 0}}}, "apiPerMinute"),
    ("sample rate above 1", {"sentry": {"tracesSampleRate": 1.5}}, "tracesSampleRate"),
    (
        "too many consumers",
        {"gateway": {"keyAuth": {"consumers": [{"username": f"u{i}"} for i in range(500)]}}},
        "consumers",
    ),
]


@pytest.mark.parametrize(
    ("spec", "expected"), [(s, e) for _, s, e in BAD_SPECS], ids=[i for i, _, _ in BAD_SPECS]
)
def test_bad_spec_is_rejected_with_a_clear_message(
    kubeconfig: Path, namespace: str, spec: dict[str, Any], expected: str
) -> None:
    out = _dry_run(kubeconfig, namespace, spec)
    assert "is invalid" in out or "Invalid value" in out or "unknown field" in out, out
    assert expected in out, out


# The shared syntax table (IPs/CIDRs, qualified names, requests <= limits): the CRD's CEL rules
# must give the spec model's verdict and message. Server-side dry runs in `default` persist
# nothing, so the cases share it instead of creating a namespace each.


@pytest.mark.parametrize("case", admission_cases.BAD, ids=[c.id for c in admission_cases.BAD])
def test_cel_rejects_bad_syntax_with_the_rule_message(
    kubeconfig: Path, case: admission_cases.Case
) -> None:
    out = _dry_run(kubeconfig, "default", case.spec)
    assert "is invalid" in out, out
    assert case.message in out, out


@pytest.mark.parametrize("case", admission_cases.GOOD, ids=[c.id for c in admission_cases.GOOD])
def test_cel_accepts_good_syntax(kubeconfig: Path, case: admission_cases.Case) -> None:
    out = _dry_run(kubeconfig, "default", case.spec, name="good")
    assert "created (server dry run)" in out, out


def test_default_spec_is_accepted(kubeconfig: Path, namespace: str) -> None:
    out = _dry_run(kubeconfig, namespace, {}, name="good")
    assert "created (server dry run)" in out, out


def test_over_long_instance_name_is_rejected(kubeconfig: Path, namespace: str) -> None:
    out = _dry_run(kubeconfig, namespace, {}, name="n" * 60)
    assert "metadata.name" in out or "name" in out
    assert "created" not in out


def test_storage_class_is_immutable(kubeconfig: Path, namespace: str) -> None:
    first = {"weaviate": {"persistence": {"storageClassName": "standard"}}}
    assert "created" in kubectl(kubeconfig, "apply", "-f", "-", stdin=_cr(namespace, first, "imm"))
    changed = {"weaviate": {"persistence": {"storageClassName": "fast"}}}
    out = kubectl(kubeconfig, "apply", "-f", "-", stdin=_cr(namespace, changed, "imm"), check=False)
    assert "immutable" in out, out
