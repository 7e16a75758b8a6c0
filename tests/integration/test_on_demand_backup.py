"""On-demand backup and restore by annotation, on the local control plane.

kwok runs no containers: a Job's pods "succeed" once scheduled (tests/cluster/kwok-stages.yaml),
so a Job whose backup volume exists completes; without the volume its pods stay Pending and
the test sets the Job's failure itself, as the Job controller would after its retries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from indexforge_operator import on_demand
from tests.conftest import kubectl
from tests.waiting import wait_for

from .job_status import fail_job
from .test_operator import _apply, _condition, _cr, _sample

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator_process")]

BACKUP = {"enabled": True, "target": {"volume": {"claimName": "backups"}}}
REQUEST_JOBS = "indexforge.io/request=backup"


def _jobs(api_client: Any, namespace: str, selector: str = REQUEST_JOBS) -> list[Any]:
    items = client.BatchV1Api(api_client).list_namespaced_job(namespace, label_selector=selector)
    return sorted(items.items, key=lambda j: j.metadata.name)


def _one_job_per_cronjob(api_client: Any, namespace: str) -> list[Any]:
    """The request's Jobs once there is one per backup CronJob (every scheduled source)."""
    batch = client.BatchV1Api(api_client)

    def ready() -> list[Any] | None:
        cronjobs = batch.list_namespaced_cron_job(namespace).items
        jobs = _jobs(api_client, namespace)
        bases = sorted(j.metadata.name.rsplit("-", 1)[0] for j in jobs)
        wanted = sorted(c.metadata.name for c in cronjobs)
        return jobs if wanted and bases == wanted and "demo-rst-backup" in bases else None

    return wait_for(ready, timeout=60, what="one request Job per backup CronJob")


def _annotate(kubeconfig: Path, namespace: str, key: str, value: str) -> None:
    kubectl(kubeconfig, "-n", namespace, "annotate", "--overwrite", "indexforge/demo",
            f"{key}={value}")  # fmt: skip


def _with_reason(api_client: Any, namespace: str, ctype: str, reason: str) -> Any:
    cond = _condition(_cr(api_client, namespace, "demo"), ctype)
    return cond if cond is not None and cond["reason"] == reason else None


def _events(api_client: Any, namespace: str, reason: str) -> list[Any]:
    core = client.CoreV1Api(api_client)
    return list(core.list_namespaced_event(namespace, field_selector=f"reason={reason}").items)


def test_backup_now_runs_the_jobs_once_and_reports_success(
    api_client: Any, kubeconfig: Path, namespace: str
) -> None:
    client.CoreV1Api(api_client).create_namespaced_persistent_volume_claim(
        namespace,
        {
            "metadata": {"name": "backups"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    _apply(kubeconfig, _sample(namespace, backup=BACKUP))
    _annotate(kubeconfig, namespace, on_demand.BACKUP_ANNOTATION, "first")
    jobs = _one_job_per_cronjob(api_client, namespace)
    cond = wait_for(
        lambda: _with_reason(api_client, namespace, "OnDemandBackup", "BackupSucceeded"),
        timeout=90,
        what="BackupSucceeded",
    )
    assert cond["status"] == "True"
    record = _cr(api_client, namespace, "demo")["status"]["backupRequest"]
    assert record["request"] == "first" and record["result"] == "Succeeded"
    # Events are posted after the status write: wait for them too.
    wait_for(lambda: _events(api_client, namespace, "BackupSucceeded"), timeout=30,
             what="the BackupSucceeded Event")  # fmt: skip

    # Passes that follow (a spec change) start nothing new for the handled value.
    _apply(kubeconfig, _sample(namespace, backup=BACKUP, ml={"batchSize": 16}))
    wait_for(lambda: (lambda cr: cr["status"].get("observedGeneration") ==
                      cr["metadata"]["generation"])(_cr(api_client, namespace, "demo")),
             timeout=60, what="the spec change reconciled")  # fmt: skip
    assert [j.metadata.uid for j in _jobs(api_client, namespace)] == [j.metadata.uid for j in jobs]


def test_a_failed_backup_job_and_a_refused_restore_are_reported(
    api_client: Any, kubeconfig: Path, namespace: str
) -> None:
    # No `backups` PVC: the Jobs' pods cannot schedule, so the Jobs stay active.
    _apply(kubeconfig, _sample(namespace, backup=BACKUP))
    _annotate(kubeconfig, namespace, on_demand.BACKUP_ANNOTATION, "doomed")
    jobs = _one_job_per_cronjob(api_client, namespace)
    wait_for(lambda: _with_reason(api_client, namespace, "OnDemandBackup", "BackupRunning"),
             timeout=30, what="BackupRunning")  # fmt: skip
    victim = jobs[0]
    # A finished Job has no active pods (its pods never ran here).
    fail_job(api_client, namespace, victim.metadata.name, reason="BackoffLimitExceeded",
             message="Job has reached the specified backoff limit", failed=3)  # fmt: skip
    cond = wait_for(
        lambda: _with_reason(api_client, namespace, "OnDemandBackup", "BackupFailed"),
        timeout=60,
        what="BackupFailed",
    )
    assert cond["status"] == "False"
    assert f"Job {victim.metadata.name}: BackoffLimitExceeded" in cond["message"], cond
    events = wait_for(lambda: _events(api_client, namespace, "BackupFailed"), timeout=30,
                      what="the BackupFailed Event")  # fmt: skip
    assert len(events) == 1 and events[0].type == "Warning"
    assert "BackoffLimitExceeded" in events[0].message and "doomed" in events[0].message

    # A Redis restore naming no file the backup job writes is refused; no Job starts.
    _annotate(kubeconfig, namespace, on_demand.RESTORE_ANNOTATION, "redis-state/redis-x.rdb")
    cond = wait_for(
        lambda: _with_reason(api_client, namespace, "Restore", "RestoreInvalid"),
        timeout=60,
        what="RestoreInvalid",
    )
    assert "redis-<YYYYmmddTHHMMSSZ>.rdb" in cond["message"]
    # Events are posted right after the status write: wait for them, not only the condition.
    wait_for(lambda: _events(api_client, namespace, "RestoreInvalid"), timeout=30,
             what="the RestoreInvalid Event")  # fmt: skip
    assert _jobs(api_client, namespace, "indexforge.io/request=restore") == []
