"""A Redis restore through the CR on the local control plane, with the operator running under
its own RBAC: annotation -> StatefulSet at 0 -> no pod left -> restore Job with the Redis's
claim and the backup claim -> StatefulSet back -> status and Events.

kwok runs no containers: a Job's pod "succeeds" once it is Running (tests/cluster/
kwok-stages.yaml), so with a bound backup claim the Job completes by itself (what the script
does is tested on real processes in tests/services/test_redis_restore_job.py). For the
failure, the backup claim names a StorageClass that does not exist: it never binds, the
Job's pod stays Pending, and the test fails the Job through its status subresource and
deletes its pod, as the Job controller would after activeDeadlineSeconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from indexforge_operator import on_demand
from tests.waiting import wait_for

from .job_status import fail_job
from .test_on_demand_backup import BACKUP, _annotate, _events, _with_reason
from .test_operator import _apply, _cr, _sample

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator_process")]

VALUE = "redis-state/redis-20261202T023000Z.rdb"
STATE_PODS = "app.kubernetes.io/instance=demo,app.kubernetes.io/component=redis-state"


def _backups_claim(api_client: Any, namespace: str, storage_class: str | None = None) -> None:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
    }
    if storage_class:
        spec["storageClassName"] = storage_class
    client.CoreV1Api(api_client).create_namespaced_persistent_volume_claim(
        namespace, {"metadata": {"name": "backups"}, "spec": spec}
    )


def _replicas(api_client: Any, namespace: str) -> int:
    sts = client.AppsV1Api(api_client).read_namespaced_stateful_set("demo-redis-state", namespace)
    return int(sts.spec.replicas)


def _record(api_client: Any, namespace: str) -> dict[str, Any]:
    return dict(_cr(api_client, namespace, "demo").get("status", {}).get("restoreRequest") or {})


def _restore_job(api_client: Any, namespace: str) -> Any:
    jobs = (
        client.BatchV1Api(api_client)
        .list_namespaced_job(namespace, label_selector="indexforge.io/request=restore")
        .items
    )
    return jobs[0] if jobs else None


def _running_redis(api_client: Any, kubeconfig: Path, namespace: str) -> None:
    """The CR applied with backups, its state Redis running with its claim bound."""
    _apply(kubeconfig, _sample(namespace, backup=BACKUP))
    core = client.CoreV1Api(api_client)

    def up() -> bool:
        pods = core.list_namespaced_pod(namespace, label_selector=STATE_PODS).items
        claims = [
            c.metadata.name for c in core.list_namespaced_persistent_volume_claim(namespace).items
        ]
        return bool(pods) and "data-demo-redis-state-0" in claims

    wait_for(up, timeout=90, what="the state Redis pod and its claim")


def _stopped_then_job(api_client: Any, namespace: str) -> Any:
    """StatefulSet at 0 first; the Job only once no state Redis pod is left."""
    wait_for(lambda: _replicas(api_client, namespace) == 0, timeout=60, what="scaled to 0")
    job = wait_for(lambda: _restore_job(api_client, namespace), timeout=90, what="restore Job")
    pods = client.CoreV1Api(api_client).list_namespaced_pod(namespace, label_selector=STATE_PODS)
    assert pods.items == [], "the Job was created while a Redis pod was left"
    assert job.metadata.name == f"demo-rst-restore-{on_demand._suffix(VALUE)}"
    pod = job.spec.template.spec
    claims = {v.name: v.persistent_volume_claim for v in pod.volumes if v.persistent_volume_claim}
    assert claims["data"].claim_name == "data-demo-redis-state-0"
    assert (claims["target"].claim_name, claims["target"].read_only) == ("backups", True)
    (container,) = pod.containers
    assert container.command[-2:] == ["/backup/redis-state/redis-20261202T023000Z.rdb", "/data"]
    assert job.spec.backoff_limit == 0
    assert job.metadata.owner_references[0].kind == "IndexForge"
    return job


def test_a_failed_restore_job_starts_redis_again_and_reports_the_reason(
    api_client: Any, kubeconfig: Path, namespace: str
) -> None:
    _backups_claim(api_client, namespace, storage_class="never-binds")
    _running_redis(api_client, kubeconfig, namespace)
    # Unhappy first: a file name the backup job never writes is refused, nothing stops.
    _annotate(kubeconfig, namespace, on_demand.RESTORE_ANNOTATION, "redis-state/dump.rdb")
    wait_for(lambda: _with_reason(api_client, namespace, "Restore", "RestoreInvalid"),
             timeout=60, what="RestoreInvalid")  # fmt: skip
    assert _replicas(api_client, namespace) == 1

    _annotate(kubeconfig, namespace, on_demand.RESTORE_ANNOTATION, VALUE)
    job = _stopped_then_job(api_client, namespace)

    # The Job is visible before the pass that created it has written its step.
    def restoring() -> Any:
        cond = _with_reason(api_client, namespace, "Restore", "RestoreRunning")
        return cond if cond is not None and "Restoring" in cond["message"] else None

    wait_for(restoring, timeout=30, what="RestoreRunning in step Restoring")
    ready = _cr(api_client, namespace, "demo")["status"]["conditions"]
    state = next(c for c in ready if c["type"] == "RedisStateAvailable")
    assert state["reason"] == "Restoring"  # stopped on purpose, said so

    core = client.CoreV1Api(api_client)
    fail_job(api_client, namespace, job.metadata.name, reason="DeadlineExceeded",
             message="Job was active longer than specified deadline", failed=1)  # fmt: skip
    # Its pod is still there (Pending, it could still start): Redis stays stopped until it
    # is gone. (A Job that really failed has no pod left running; Succeeded/Failed pods
    # stay until the Job goes and do not count.)
    pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={job.metadata.name}")
    assert pods.items
    wait_for(lambda: _record(api_client, namespace).get("step") == "Restoring" or None,
             timeout=30, what="still Restoring")  # fmt: skip
    assert _replicas(api_client, namespace) == 0
    for pod in pods.items:
        core.delete_namespaced_pod(pod.metadata.name, namespace, grace_period_seconds=0)

    cond = wait_for(lambda: _with_reason(api_client, namespace, "Restore", "RestoreFailed"),
                    timeout=120, what="RestoreFailed")  # fmt: skip
    assert "DeadlineExceeded" in cond["message"], cond
    assert _replicas(api_client, namespace) == 1
    # Events follow the status write.
    (event,) = wait_for(lambda: _events(api_client, namespace, "RestoreFailed"), timeout=30,
                        what="the RestoreFailed Event")  # fmt: skip
    assert event.type == "Warning" and "DeadlineExceeded" in event.message


def test_a_restore_stops_redis_runs_the_job_and_starts_it_again(
    api_client: Any, kubeconfig: Path, namespace: str
) -> None:
    _backups_claim(api_client, namespace)
    _running_redis(api_client, kubeconfig, namespace)
    _annotate(kubeconfig, namespace, on_demand.RESTORE_ANNOTATION, VALUE)
    _stopped_then_job(api_client, namespace)
    cond = wait_for(lambda: _with_reason(api_client, namespace, "Restore", "RestoreSucceeded"),
                    timeout=180, what="RestoreSucceeded")  # fmt: skip
    assert cond["status"] == "True"
    assert _replicas(api_client, namespace) == 1
    record = _record(api_client, namespace)
    # Status is merge-patched: the finished record lost its step keys for real.
    assert record["result"] == "Succeeded" and "step" not in record and "jobResult" not in record
    for reason in ("RestoreStarted", "RestoreJobStarted", "RestoreStarting", "RestoreSucceeded"):
        events = wait_for(
            lambda r=reason: _events(api_client, namespace, r), timeout=30, what=reason
        )  # type: ignore[misc]
        assert [e.type for e in events] == ["Normal"], reason
    # Succeeded only once the Redis was ready again.
    sts = client.AppsV1Api(api_client).read_namespaced_stateful_set("demo-redis-state", namespace)
    assert sts.status.ready_replicas == 1
