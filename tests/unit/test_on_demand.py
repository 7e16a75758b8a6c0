"""On-demand backup/restore requests (on_demand.py): which Jobs, once per value, results."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from indexforge_operator import on_demand
from indexforge_operator.builders.backup import backup_pod_spec
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec

NAMES = Names("demo", "shop")
BACKUP = {"enabled": True, "target": {"volume": {"claimName": "backups"}}}
PRESENT: list[Any] = ["api", "ml", "weaviate", "redis-app", "redis-state"]


def _spec(**backup: Any) -> IndexForgeSpec:
    return IndexForgeSpec.model_validate({"backup": {**BACKUP, **backup}})


def _body(annotations: dict[str, str], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "indexforge.io/v1alpha1",
        "kind": "IndexForge",
        "metadata": {"name": "demo", "namespace": "shop", "uid": "u1", "annotations": annotations},
        "status": status or {},
    }


class _Kube:
    def __init__(self, jobs: dict[str, Any] | None = None, fail: bool = False) -> None:
        self.applied: list[dict[str, Any]] = []
        self.jobs = jobs or {}
        self.fail = fail
        self.gets = 0

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        if self.fail:
            raise ApiException(status=403, reason="Forbidden")
        self.applied.append(obj)
        return obj

    def get(self, ref: dict[str, Any]) -> Any:
        self.gets += 1
        return self.jobs.get(ref["metadata"]["name"])


def _handle(
    kube: _Kube, body: dict[str, Any], spec: IndexForgeSpec | None = None, **kw: Any
) -> Any:
    return on_demand.handle(
        kube,  # type: ignore[arg-type]
        body,
        spec or _spec(),
        NAMES,
        present=PRESENT,
        write=kw.pop("write", True),
        now=kw.pop("now", "2026-12-02T20:00:00Z"),
    )


def test_backup_now_runs_the_cronjobs_pod_once_per_value() -> None:
    kube = _Kube()
    out = _handle(kube, _body({on_demand.BACKUP_ANNOTATION: "t1"}))
    names = [j["metadata"]["name"] for j in kube.applied]
    suffix = on_demand._suffix("t1")
    assert names == [f"demo-wv-backup-{suffix}", f"demo-rapp-backup-{suffix}",
                     f"demo-rst-backup-{suffix}"]  # fmt: skip
    job = kube.applied[0]
    assert job["spec"]["template"]["spec"] == backup_pod_spec(_spec(), NAMES, "weaviate")
    assert job["metadata"]["ownerReferences"][0]["uid"] == "u1"
    assert on_demand.is_request_job(job) and job["spec"]["ttlSecondsAfterFinished"] > 0
    record = out.status["backupRequest"]
    assert record == {"request": "t1", "jobs": names, "result": "Running"}
    assert (out.conditions[0].type, out.conditions[0].status) == ("OnDemandBackup", "Unknown")
    # The same value again (status recorded it): nothing new is started.
    again = _Kube()
    _handle(again, _body({on_demand.BACKUP_ANNOTATION: "t1"}, out.status))
    assert again.applied == []
    assert again.gets == 3  # only following the running Jobs


def _job(condition: str, reason: str = "", message: str = "") -> dict[str, Any]:
    cond = {"type": condition, "status": "True", "reason": reason, "message": message}
    return {"status": {"conditions": [cond]}}


def test_a_failed_job_fails_the_request_with_the_jobs_reason_once() -> None:
    running = {"request": "t1", "jobs": ["a", "b"], "result": "Running"}
    jobs = {"a": _job("Complete"), "b": _job("Failed", "BackoffLimitExceeded", "too many")}
    body = _body({on_demand.BACKUP_ANNOTATION: "t1"}, {"backupRequest": running})
    out = _handle(_Kube(jobs), body)
    record = out.status["backupRequest"]
    assert record["result"] == "Failed"
    assert record["message"] == "Job b: BackoffLimitExceeded: too many"
    cond = out.conditions[0]
    assert (cond.status, cond.reason) == ("False", "BackupFailed")
    assert out.events == [("Warning", "BackupFailed", "t1: Job b: BackoffLimitExceeded: too many")]
    # Finished: the next pass neither reads the Jobs nor announces it again.
    kube = _Kube(jobs)
    later = _handle(kube, _body({on_demand.BACKUP_ANNOTATION: "t1"}, out.status))
    assert kube.gets == 0 and later.events == [] and later.conditions[0].reason == "BackupFailed"


def test_all_jobs_complete_is_success_and_a_deleted_job_is_a_failure() -> None:
    assert on_demand.combine({"a": ("Succeeded", ""), "b": ("Succeeded", "")})[0] == "Succeeded"
    assert on_demand.combine({"a": ("Succeeded", ""), "b": ("Running", "")})[0] == "Running"
    assert on_demand.job_result(None)[0] == "Failed"
    assert on_demand.job_result({"status": {"active": 1}}) == ("Running", "")


@pytest.mark.parametrize(
    ("value", "spec", "reason"),
    [
        ("redis-state/redis-20261202.rdb", None, "RestoreInvalid"),
        ("redis-state/../redis-20261202T023000Z.rdb", None, "RestoreInvalid"),
        ("redis-ml/redis-20261202T023000Z.rdb", None, "RestoreInvalid"),
        ("redis-app/redis-20261202T023000Z.rdb", {"redis": False}, "RestoreNotConfigured"),
        ("redis-state/redis-20261202T023000Z.rdb", {"enabled": False}, "RestoreNotConfigured"),
        ("weaviate/../etc", None, "RestoreInvalid"),
        ("weaviate", None, "RestoreInvalid"),
        ("grafana/x", None, "RestoreInvalid"),
        ("weaviate/weaviate-20261202t023000z", {"weaviate": False}, "RestoreNotConfigured"),
    ],
)
def test_restore_refusals_start_nothing(value: str, spec: Any, reason: str) -> None:
    kube = _Kube()
    out = _handle(kube, _body({on_demand.RESTORE_ANNOTATION: value}), _spec(**(spec or {})))
    assert kube.applied == []
    record = out.status["restoreRequest"]
    assert record["result"] == "Refused" and record["message"].startswith(reason)
    assert (out.conditions[0].type, out.conditions[0].reason) == ("Restore", reason)
    assert [e[:2] for e in out.events] == [("Warning", reason)]


def test_weaviate_restore_job_runs_the_restore_command_without_retries() -> None:
    kube = _Kube()
    value = "weaviate/weaviate-20261202t023000z"
    _handle(kube, _body({on_demand.RESTORE_ANNOTATION: value}))
    (job,) = kube.applied
    assert job["metadata"]["name"] == f"demo-wv-restore-{on_demand._suffix(value)}"
    assert job["spec"]["backoffLimit"] == 0
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"][3:] == [
        "restore-weaviate", "--url", "http://demo-weaviate.shop.svc:8080",
        "--backend", "filesystem", "--id", "weaviate-20261202t023000z",
    ]  # fmt: skip


def test_not_configured_backup_and_failed_creation_are_reported() -> None:
    out = _handle(_Kube(), _body({on_demand.BACKUP_ANNOTATION: "t"}), _spec(enabled=False))
    assert out.status["backupRequest"]["result"] == "Refused"
    assert out.conditions[0].reason == "BackupNotConfigured"
    failed = _handle(_Kube(fail=True), _body({on_demand.BACKUP_ANNOTATION: "t"}))
    record = failed.status["backupRequest"]
    assert record["result"] == "Failed" and "Job not created: 403 Forbidden" in record["message"]
    assert [e[:2] for e in failed.events] == [("Warning", "BackupFailed")]


def test_paused_starts_nothing_and_no_annotation_asks_nothing() -> None:
    kube = _Kube()
    out = _handle(kube, _body({on_demand.BACKUP_ANNOTATION: "t"}), write=False)
    assert kube.applied == [] and out.status == {} and out.conditions == []
    assert _handle(kube, _body({})).status == {} and kube.gets == 0
