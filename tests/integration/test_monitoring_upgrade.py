"""Prometheus and Grafana as StatefulSets on PVCs, backups as CronJobs, on a real API server.

- An instance upgraded from an operator version that ran Prometheus/Grafana as Deployments:
  the old Deployments (owned by the CR, our labels) are pruned; the StatefulSets stay.
- A rule change reaches the ConfigMap but not the Prometheus pod template (the reloader
  sidecar applies it; the StatefulSet's generation does not move).
- Backup CronJobs are accepted by the API server, owned by the CR and run under the chart's
  RBAC (the operator applies them with exactly the verbs test_rbac checks); a pass with
  nothing drifted does not write them again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from indexforge_operator.naming import Names, labels, selector_labels
from tests.conftest import REACTION_SECONDS
from tests.integration.test_operator import _apply, _cr, _sample, _wait_ready
from tests.operator_runner import OperatorProcess
from tests.waiting import wait_for

pytestmark = [pytest.mark.cluster]

BACKUP = {"enabled": True, "retention": 3, "target": {"volume": {"claimName": "backups"}}}


def _backup_claim(api_client: Any, namespace: str) -> None:
    client.CoreV1Api(api_client).create_namespaced_persistent_volume_claim(
        namespace,
        {
            "metadata": {"name": "backups"},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )


def _legacy_deployment(names: Names, component: str, owner: dict[str, Any]) -> dict[str, Any]:
    """What the previous operator version ran (scaled to 0: no pods needed)."""
    meta = owner["metadata"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": names.component(component),  # type: ignore[arg-type]
            "labels": labels(names, component),  # type: ignore[arg-type]
            "ownerReferences": [
                {
                    "apiVersion": owner["apiVersion"],
                    "kind": owner["kind"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": selector_labels(names, component)},  # type: ignore[arg-type]
            "template": {
                "metadata": {"labels": labels(names, component)},  # type: ignore[arg-type]
                "spec": {"containers": [{"name": component, "image": "example.invalid/x:1"}]},
            },
        },
    }


def _ready(api_client: Any, namespace: str) -> None:
    try:
        _wait_ready(api_client, namespace, "demo", timeout=150)
    except AssertionError as exc:
        status = _cr(api_client, namespace, "demo").get("status", {})
        events = client.CoreV1Api(api_client).list_namespaced_event(namespace).items
        warnings = [f"{e.involved_object.name}: {e.message}" for e in events if e.type != "Normal"]
        raise AssertionError(f"{exc}\nstatus: {status}\nwarnings: {warnings[-15:]}") from None


def _ours(obj: Any) -> str:
    """The operator's managedFields entry (moves only when its apply changed something)."""
    (entry,) = [m for m in obj.metadata.managed_fields if m.manager == "indexforge-operator"]
    return f"{entry.time}{entry.fields_v1}"


def _gone(read: Any) -> bool:
    try:
        read()
    except ApiException as exc:
        return exc.status == 404
    return False


def test_upgrade_prunes_deployments_and_rules_reload_without_rolling(
    api_client: Any, kubeconfig: Path, namespace: str, operator_process: OperatorProcess
) -> None:
    names = Names("demo", namespace)
    apps, batch = client.AppsV1Api(api_client), client.BatchV1Api(api_client)
    _backup_claim(api_client, namespace)
    _apply(kubeconfig, _sample(namespace, name="demo", backup=BACKUP))
    _ready(api_client, namespace)

    for component in ("prometheus", "grafana"):
        sts = apps.read_namespaced_stateful_set(names.component(component), namespace)  # type: ignore[arg-type]
        assert sts.spec.volume_claim_templates[0].metadata.name == "data"
    jobs = {j.metadata.name: j for j in batch.list_namespaced_cron_job(namespace).items}
    # The stores' backups (Weaviate, Redis) are scheduled beside the monitoring ones.
    assert {names.backup("prometheus"), names.backup("grafana")} <= set(jobs), sorted(jobs)
    for job in jobs.values():
        assert [o.kind for o in job.metadata.owner_references] == ["IndexForge"]
        assert job.spec.schedule == "30 2 * * *"

    # No drift on a pass: a label that is not ours triggers one; our apply entry stays.
    ours_before = {name: _ours(job) for name, job in jobs.items()}
    passes = operator_process.metric("indexforge_operator_reconciles_total")
    batch.patch_namespaced_cron_job(
        names.backup("grafana"), namespace, {"metadata": {"labels": {"team": "search"}}}
    )
    wait_for(
        lambda: operator_process.metric("indexforge_operator_reconciles_total") > passes,
        timeout=REACTION_SECONDS,
        what="a pass triggered by the CronJob's watch event",
    )
    time.sleep(2)
    after = {j.metadata.name: _ours(j) for j in batch.list_namespaced_cron_job(namespace).items}
    assert after == ours_before

    # The upgrade: Deployments of the old layout appear (as if left by the old version).
    owner = _cr(api_client, namespace, "demo")
    for component in ("prometheus", "grafana"):
        apps.create_namespaced_deployment(namespace, _legacy_deployment(names, component, owner))
    for component in ("prometheus", "grafana"):
        name = names.component(component)  # type: ignore[arg-type]
        wait_for(
            lambda name=name: _gone(lambda: apps.read_namespaced_deployment(name, namespace)),
            timeout=60,
            what=f"legacy Deployment {name} pruned",
        )
        apps.read_namespaced_stateful_set(name, namespace)  # still there

    # A rule change: the ConfigMap follows, the StatefulSet's pod template does not.
    prometheus = names.component("prometheus")
    before = apps.read_namespaced_stateful_set(prometheus, namespace)
    core = client.CoreV1Api(api_client)
    rules_before = core.read_namespaced_config_map(names.config("prometheus"), namespace).data
    _apply(
        kubeconfig,
        _sample(namespace, name="demo", backup=BACKUP, monitoring={"alerts": {"cpuPercent": 93}}),
    )
    wait_for(
        lambda: (
            core.read_namespaced_config_map(names.config("prometheus"), namespace).data
            != rules_before
        ),
        timeout=60,
        what="rules ConfigMap updated",
    )
    _ready(api_client, namespace)
    time.sleep(2)  # a late apply of the StatefulSet would show now
    after = apps.read_namespaced_stateful_set(prometheus, namespace)
    assert after.metadata.generation == before.metadata.generation
    assert after.spec.template == before.spec.template
