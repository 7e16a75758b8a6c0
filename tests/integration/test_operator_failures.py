"""The operator at production grade, on the real API server: many CRs, loud partial failures,
name conflicts, deletion without the operator, watch-driven repair. The operator runs as its
own ServiceAccount with the chart's RBAC (see ``operator_process``).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from indexforge_operator.naming import Names
from indexforge_operator.reconciler import LEGACY_FINALIZER
from tests.conftest import REACTION_SECONDS, kubectl
from tests.integration.test_operator import (
    GROUP,
    PLURAL,
    VERSION,
    _apply,
    _condition,
    _cr,
    _sample,
    _wait_ready,
    wait_workloads_gone,
)
from tests.operator_runner import OperatorProcess
from tests.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator_process")]

# Cheaper than the sample, still every kind of child: the scale test makes a dozen of them.
# No GPU: the test cluster's one GPU node has 4 GPUs, and InsufficientGPU is tested elsewhere.
# No messaging: a dozen 3-node brokers and their workers would exceed the two kwok CPU nodes'
# pod capacity (110 each) together with what earlier tests leave terminating; the broker is
# tested in test_messaging_operator.py.
LIGHT = {
    "monitoring": {"enabled": False},
    "messaging": {"enabled": False},
    "api": {"autoscaling": {"enabled": False}},
    "ml": {"gpu": {"enabled": False}},
}


def _events(api_client, namespace: str, name: str) -> list[Any]:  # type: ignore[no-untyped-def]
    return list(
        client.CoreV1Api(api_client)
        .list_namespaced_event(
            namespace, field_selector=f"involvedObject.kind=IndexForge,involvedObject.name={name}"
        )
        .items
    )


def test_more_crs_than_the_old_worker_cap_all_reach_ready(api_client, kubeconfig: Path) -> None:
    """12 CRs over 3 namespaces (the daemon-per-CR operator stopped at 8)."""
    core = client.CoreV1Api(api_client)
    namespaces = [f"t-scale-{i}-{uuid.uuid4().hex[:5]}" for i in range(3)]
    for ns in namespaces:
        core.create_namespace({"metadata": {"name": ns}})
    try:
        crs = [(ns, f"s{i}") for ns in namespaces for i in range(4)]
        for ns, name in crs:
            _apply(kubeconfig, _sample(ns, name=name, **LIGHT))
        for ns, name in crs:
            _wait_ready(api_client, ns, name, timeout=240)
    finally:
        for ns in namespaces:
            core.delete_namespace(ns)


def _deny_excel_policy(namespace: str) -> list[dict[str, Any]]:
    """A ValidatingAdmissionPolicy rejecting the excel Deployment in one namespace: the kind of
    platform policy (Gatekeeper, Kyverno, VAP) that rejects a child the CRD admitted."""
    name = f"deny-excel-{namespace}"[:63]
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": ["apps"],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": ["deployments"],
                        }
                    ]
                },
                "validations": [
                    {
                        "expression": "!object.metadata.name.endsWith('-excel')",
                        "message": "excel Deployments are not allowed here by policy",
                    }
                ],
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
                },
            },
        },
    ]


def test_a_rejected_child_degrades_the_cr_names_it_and_the_rest_is_applied(
    api_client, kubeconfig: Path, namespace: str
) -> None:
    """The API server rejects one child: the others still come up; status and a Warning Event
    name the object and carry the server's message; removing the cause recovers the CR."""
    import json

    policy = {"apiVersion": "v1", "kind": "List", "items": _deny_excel_policy(namespace)}
    kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(policy))
    names = Names("broken", namespace)
    apps = client.AppsV1Api(api_client)

    def policy_active() -> bool:  # the policy takes a moment to load
        probe = {"metadata": {"name": "probe-excel"}, "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}},
                         "spec": {"containers": [{"name": "c", "image": "x"}]}}}}  # fmt: skip
        try:
            apps.create_namespaced_deployment(namespace, probe, dry_run="All")
        except ApiException as exc:
            return exc.status in (403, 422)
        return False

    wait_for(policy_active, timeout=30, what="admission policy active")
    try:
        _apply(kubeconfig, _sample(namespace, name="broken", **LIGHT))

        def degraded() -> dict[str, Any] | None:
            cond = _condition(_cr(api_client, namespace, "broken"), "Degraded")
            return cond if cond and cond["reason"] == "ApplyFailed" else None

        cond = wait_for(degraded, timeout=60, what="Degraded/ApplyFailed")
        assert f"Deployment/{names.component('excel')}" in cond["message"]
        assert "not allowed here by policy" in cond["message"], "the server's message is kept"
        ready = _condition(_cr(api_client, namespace, "broken"), "Ready")
        assert ready is not None and (ready["status"], ready["reason"]) == ("False", "ApplyFailed")
        for later in (names.component("api"), names.component("gateway")):
            assert apps.read_namespaced_deployment(later, namespace), later
        wait_for(
            lambda: any(
                e.type == "Warning" and e.reason == "ApplyFailed" and "excel" in e.message
                for e in _events(api_client, namespace, "broken")
            ),
            timeout=30,
            what="Warning Event ApplyFailed naming the excel Deployment",
        )
    finally:
        for obj in _deny_excel_policy(namespace):
            kind = (
                "validatingadmissionpolicybinding"
                if "Binding" in obj["kind"]
                else ("validatingadmissionpolicy")
            )
            kubectl(kubeconfig, "delete", kind, obj["metadata"]["name"], "--ignore-not-found")
    _wait_ready(api_client, namespace, "broken", timeout=120)  # the next backoff retry


def test_backoff_keeps_a_broken_cr_cheap_and_a_fix_recovers_it(
    api_client, kubeconfig: Path, namespace: str, operator_process: OperatorProcess
) -> None:
    """A CR whose Sentry Secret is missing is retried with growing delays, not every 4 s."""
    sentry = {"enabled": True, "dsnSecretRef": {"name": "dsn", "key": "dsn"}}
    _apply(kubeconfig, _sample(namespace, name="nodsn", sentry=sentry, **LIGHT))
    wait_for(
        lambda: (
            (_condition(_cr(api_client, namespace, "nodsn"), "Degraded") or {}).get("reason")
            == "SentrySecretMissing"
        ),
        timeout=60,
        what="Degraded/SentrySecretMissing",
    )
    time.sleep(20)
    events = [
        e for e in _events(api_client, namespace, "nodsn") if e.reason == "SentrySecretMissing"
    ]
    # Aggregated into one Event whose count grows with each retry: 2+4+8 s fits ~3-4 in 20 s.
    assert len(events) <= 2, [e.message for e in events]
    assert sum(e.count or 1 for e in events) <= 8
    client.CoreV1Api(api_client).create_namespaced_secret(
        namespace,
        {"metadata": {"name": "dsn"}, "stringData": {"dsn": "https://k@sentry.invalid/1"}},
    )
    started = time.monotonic()
    _wait_ready(api_client, namespace, "nodsn", timeout=60)
    assert time.monotonic() - started < 30, "the Secret's watch event triggers the pass"


def test_two_crs_never_fight_over_one_object(api_client, kubeconfig: Path, namespace: str) -> None:
    """CRs `x` and `x-redis` both derive `x-redis-ml`: the first keeps it, the second reports
    NameConflict and never takes it over (no owner flip, no GC of the other's Service)."""
    _apply(kubeconfig, _sample(namespace, name="x", **LIGHT))
    _wait_ready(api_client, namespace, "x")
    core = client.CoreV1Api(api_client)
    service = core.read_namespaced_service("x-redis-ml", namespace)
    owner_before = [(o.name, o.uid) for o in service.metadata.owner_references]

    _apply(kubeconfig, _sample(namespace, name="x-redis", **LIGHT))

    def conflict() -> dict[str, Any] | None:
        cond = _condition(_cr(api_client, namespace, "x-redis"), "Degraded")
        return cond if cond and cond["reason"] == "NameConflict" else None

    cond = wait_for(conflict, timeout=60, what="Degraded/NameConflict on the second CR")
    assert "x-redis-ml" in cond["message"]
    time.sleep(3)
    service = core.read_namespaced_service("x-redis-ml", namespace)
    assert [(o.name, o.uid) for o in service.metadata.owner_references] == owner_before
    client.CustomObjectsApi(api_client).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "x-redis"
    )
    time.sleep(5)
    assert (
        core.read_namespaced_service("x-redis-ml", namespace).metadata.uid == service.metadata.uid
    )
    _wait_ready(api_client, namespace, "x")


def test_drift_is_repaired_by_watch_events_within_seconds(
    api_client, kubeconfig: Path, namespace: str
) -> None:
    """The operator's resync is 10 minutes here: only the watch can explain a fast repair."""
    _apply(kubeconfig, _sample(namespace, name="drift", **LIGHT))
    _wait_ready(api_client, namespace, "drift")
    names = Names("drift", namespace)
    core = client.CoreV1Api(api_client)
    cm = names.config("redis-app")
    core.delete_namespaced_config_map(cm, namespace)
    started = time.monotonic()
    wait_for(lambda: core.read_namespaced_config_map(cm, namespace), timeout=REACTION_SECONDS,
             what="ConfigMap restored")  # fmt: skip
    assert time.monotonic() - started < REACTION_SECONDS


def test_deleting_a_cr_while_the_operator_is_down_completes(
    api_client, kubeconfig: Path, namespace: str, operator_process: OperatorProcess
) -> None:
    """No finalizer: ownerReferences and the StatefulSets' PVC policy clean up without us.
    A CR carrying the old kopf finalizer has it removed by the next pass."""
    _apply(kubeconfig, _sample(namespace, name="gone", deletionPolicy="Delete", **LIGHT))
    _wait_ready(api_client, namespace, "gone")
    assert not _cr(api_client, namespace, "gone")["metadata"].get("finalizers")
    operator_process.stop()
    try:
        kubectl(kubeconfig, "-n", namespace, "delete", "indexforge/gone", "--timeout=30s")
        wait_workloads_gone(
            api_client, namespace, what="children garbage-collected without the operator"
        )
        legacy = _sample(namespace, name="legacy", **LIGHT)
        legacy["metadata"]["finalizers"] = [LEGACY_FINALIZER]
        _apply(kubeconfig, legacy)
    finally:
        operator_process.start()
    wait_for(
        lambda: not _cr(api_client, namespace, "legacy")["metadata"].get("finalizers"),
        timeout=REACTION_SECONDS * 2,
        what="legacy finalizer removed",
    )
    kubectl(kubeconfig, "-n", namespace, "delete", "indexforge/legacy", "--timeout=30s")
    with pytest.raises(ApiException) as gone:
        _cr(api_client, namespace, "legacy")
    assert gone.value.status == 404
