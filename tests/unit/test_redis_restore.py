"""Redis restore through the CR: the pure steps (redis_restore.decide), the requests' records
across passes (on_demand.handle with a fake API), the stopped StatefulSets and the Job."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from indexforge_operator import on_demand
from indexforge_operator.builders import build_redis
from indexforge_operator.builders.redis_restore import SCRIPT
from indexforge_operator.naming import Names
from indexforge_operator.redis_restore import TIMEOUT_SECONDS, Next, Observed, decide
from indexforge_operator.spec import IndexForgeSpec

NAMES = Names("demo", "shop")
BACKUP = {"enabled": True, "target": {"volume": {"claimName": "backups"}}}
FILE = "redis-20261202T023000Z.rdb"
VALUE = f"redis-state/{FILE}"
T0 = "2026-12-02T20:00:00Z"
JOB = f"demo-rst-restore-{on_demand._suffix(VALUE)}"


# -- the steps, unhappy paths first ---------------------------------------------------------


def test_stopping_waits_for_every_pod_including_terminating_ones() -> None:
    assert decide("Stopping", Observed(10, scaled_down=False, pods=1)) == Next("Stopping")
    # Scaled to 0 but a pod still terminates (it may still write its volume): wait.
    assert decide("Stopping", Observed(10, scaled_down=True, pods=1)) == Next("Stopping")
    # No pod yet, but the StatefulSet still wants replicas (not applied yet): wait.
    assert decide("Stopping", Observed(10, scaled_down=False, pods=0)) == Next("Stopping")


def test_stopping_that_never_ends_fails_without_a_job() -> None:
    nxt = decide("Stopping", Observed(TIMEOUT_SECONDS + 1, scaled_down=True, pods=2))
    assert nxt.step is None and nxt.result == "Failed" and not nxt.create_job
    assert nxt.message.startswith("RestoreTimeout") and "nothing was restored" in nxt.message


def test_the_job_is_created_once_redis_is_gone() -> None:
    assert decide("Stopping", Observed(5, scaled_down=True, pods=0)) == Next(
        "Restoring", create_job=True
    )
    # A restart after the Job was created but before status said so: not created again.
    existing = Observed(5, scaled_down=True, pods=0, job=("Running", ""))
    assert decide("Stopping", existing) == Next("Restoring")


def test_restoring_never_starts_redis_while_the_job_may_write() -> None:
    running = Observed(TIMEOUT_SECONDS * 10, job=("Running", ""))
    assert decide("Restoring", running) == Next("Restoring")  # the Job's deadline bounds it
    failed_pod_left = Observed(10, job=("Failed", "DeadlineExceeded: late"), job_pods=1)
    assert decide("Restoring", failed_pod_left) == Next("Restoring")


@pytest.mark.parametrize(
    ("job", "result", "message"),
    [
        (("Failed", "BackoffLimitExceeded: rc 1"), "Failed", "BackoffLimitExceeded: rc 1"),
        (None, "Failed", "the restore Job was deleted before it finished"),
        (("Succeeded", ""), "Succeeded", ""),
    ],
)
def test_a_finished_job_starts_redis_and_carries_its_result(
    job: Any, result: str, message: str
) -> None:
    nxt = decide("Restoring", Observed(10, job=job))
    assert nxt == Next("Starting", job_result=result, message=message)
    # Starting: the request ends once Redis is ready, with the Job's result.
    assert decide("Starting", Observed(20), job_result=result, job_message=message).step == (
        "Starting"
    )
    done = decide("Starting", Observed(20, ready=True), job_result=result, job_message=message)
    assert (done.step, done.result, done.message) == (None, result, message)


def test_starting_is_bounded_too() -> None:
    late = decide("Starting", Observed(TIMEOUT_SECONDS + 1), job_result="Succeeded")
    assert late.step is None and late.result == "Failed"
    assert "restored but Redis was not ready" in late.message


# -- records across passes ------------------------------------------------------------------


class _Kube:
    """The API as the steps see it: StatefulSets, pods by selector, Jobs, PVCs."""

    def __init__(self, *, pvcs: tuple[str, ...] = ("data-demo-redis-state-0", "backups")) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: dict[str, list[str]] = {}  # label selector -> the pods' phases
        self.pvcs = set(pvcs)
        self.applied: list[dict[str, Any]] = []
        self.fail_apply = False

    def sts(self, name: str, replicas: int, ready: int) -> None:
        self.objects[("StatefulSet", name)] = {
            "metadata": {"name": name, "generation": 2},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": 2, "readyReplicas": ready},
        }

    def get(self, ref: dict[str, Any]) -> Any:
        return self.objects.get((ref["kind"], ref["metadata"]["name"]))

    def list_path(self, path: str, selector: str) -> list[Any]:
        assert path == "/api/v1/namespaces/shop/persistentvolumeclaims" and selector == ""
        return [{"metadata": {"name": n}} for n in sorted(self.pvcs)]

    def list_pods(self, namespace: str, selector: str) -> list[Any]:
        assert namespace == "shop"
        return [{"status": {"phase": phase}} for phase in self.pods.get(selector, [])]

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        if self.fail_apply:
            raise ApiException(status=403, reason="Forbidden")
        self.applied.append(obj)
        self.objects[(obj["kind"], obj["metadata"]["name"])] = obj
        return obj


STATE_PODS = (
    "app.kubernetes.io/name=indexforge,app.kubernetes.io/instance=demo,"
    "app.kubernetes.io/component=redis-state"
)


def _spec(**state: Any) -> IndexForgeSpec:
    return IndexForgeSpec.model_validate({"backup": BACKUP, "redis": {"state": state}})


def _pass(
    kube: _Kube, status: dict[str, Any], value: str = VALUE, *, now: str = T0, **kw: Any
) -> Any:
    body = {
        "apiVersion": "indexforge.io/v1alpha1",
        "kind": "IndexForge",
        "metadata": {"name": "demo", "namespace": "shop", "uid": "u1",
                     "annotations": {on_demand.RESTORE_ANNOTATION: value}},
        "status": status,
    }  # fmt: skip
    return on_demand.handle(
        kube,  # type: ignore[arg-type]
        body,
        kw.pop("spec", None) or _spec(),
        NAMES,
        present=["redis-app", "redis-state"],
        write=True,
        now=now,
        kinds=("restore",),
    )


def _replicas(objs: list[dict[str, Any]]) -> dict[str, int]:
    return {
        o["metadata"]["name"]: o["spec"]["replicas"] for o in objs if o["kind"] == "StatefulSet"
    }


def test_missing_volumes_refuse_before_anything_stops() -> None:
    for missing in ("data-demo-redis-state-0", "backups"):
        kube = _Kube(pvcs=tuple({"data-demo-redis-state-0", "backups"} - {missing}))
        out = _pass(kube, {})
        record = out.status["restoreRequest"]
        assert record["result"] == "Refused" and missing in record["message"]
        assert on_demand.restoring(out.status) == frozenset() and kube.applied == []
        assert [e[:2] for e in out.events] == [("Warning", "RestoreTargetMissing")]
    no_volume = _pass(_Kube(), {}, spec=_spec(persistence={"enabled": False}))
    assert no_volume.conditions[0].reason == "RestoreNoVolume"


def test_a_restore_stops_redis_runs_the_job_and_starts_it_again_across_restarts() -> None:
    kube = _Kube()
    kube.sts("demo-redis-state", 1, 1)
    kube.pods[STATE_PODS] = ["Running"]
    first = _pass(kube, {})
    record = first.status["restoreRequest"]
    assert record == {"request": VALUE, "jobs": [JOB], "result": "Running", "step": "Stopping",
                      "startedAt": T0, "jobResult": None, "message": ""}  # fmt: skip
    assert [e[:2] for e in first.events] == [("Normal", "RestoreStarted")]
    # The builders render the state Redis (only it) with 0 replicas while it is stopped.
    stopped = on_demand.restoring(first.status)
    assert stopped == {"redis-state"}
    assert _replicas(build_redis(_spec(), NAMES, restoring=stopped)) == {
        "demo-redis-app": 1, "demo-redis-ml": 1, "demo-redis-state": 0}  # fmt: skip

    # Scaled down, one pod still terminating (whatever its phase): no Job yet.
    kube.pods[STATE_PODS] = ["Succeeded"]
    kube.sts("demo-redis-state", 0, 0)
    waiting = _pass(kube, first.status, now="2026-12-02T20:00:10Z")
    assert waiting.status["restoreRequest"]["step"] == "Stopping" and kube.applied == []

    # The pod is gone: the Job is created, by an operator that restarted (a new fake API
    # and nothing but the CR's status carried over).
    restarted = _Kube()
    restarted.sts("demo-redis-state", 0, 0)
    job_pass = _pass(restarted, waiting.status, now="2026-12-02T20:00:20Z")
    assert job_pass.status["restoreRequest"]["step"] == "Restoring"
    assert on_demand.restoring(job_pass.status) == {"redis-state"}
    (job,) = restarted.applied
    assert job["metadata"]["name"] == JOB and job["spec"]["backoffLimit"] == 0
    assert job["metadata"]["ownerReferences"][0]["uid"] == "u1"
    pod = job["spec"]["template"]["spec"]
    claims = {v["name"]: v.get("persistentVolumeClaim") for v in pod["volumes"]}
    assert claims["data"] == {"claimName": "data-demo-redis-state-0"}
    assert claims["target"] == {"claimName": "backups", "readOnly": True}
    (container,) = pod["containers"]
    assert container["image"] == _spec().redis.state.image  # ships redis-check-rdb
    assert container["command"] == ["sh", "-c", SCRIPT, "restore",
                                    f"/backup/redis-state/{FILE}", "/data"]  # fmt: skip
    assert pod["securityContext"]["runAsUser"] == 999
    assert [e[1] for e in job_pass.events] == ["RestoreJobStarted"]

    # A second request meanwhile waits: no second Job, the running record stays.
    other = "redis-state/redis-20261201T023000Z.rdb"
    busy = _pass(restarted, job_pass.status, other, now="2026-12-02T20:00:25Z")
    assert busy.status["restoreRequest"]["request"] == VALUE and len(restarted.applied) == 1
    assert f"{other} waits for it" in busy.conditions[0].message

    # The Job succeeded but its pod is still there: Redis stays stopped.
    restarted.objects[("Job", JOB)]["status"] = {
        "conditions": [{"type": "Complete", "status": "True"}]
    }
    restarted.pods[f"job-name={JOB}"] = ["Running"]
    held = _pass(restarted, busy.status, now="2026-12-02T20:01:00Z")
    assert held.status["restoreRequest"]["step"] == "Restoring"
    # Its pod has ended (Succeeded: it stays until the Job goes) and no longer counts.
    restarted.pods[f"job-name={JOB}"] = ["Succeeded"]
    starting = _pass(restarted, held.status, now="2026-12-02T20:01:10Z")
    record = starting.status["restoreRequest"]
    assert (record["step"], record["jobResult"]) == ("Starting", "Succeeded")
    assert on_demand.restoring(starting.status) == frozenset()  # rendered as the spec says
    # Ready again: Succeeded, once.
    restarted.sts("demo-redis-state", 1, 0)
    assert _pass(restarted, starting.status).status["restoreRequest"]["result"] == "Running"
    restarted.sts("demo-redis-state", 1, 1)
    done = _pass(restarted, starting.status, now="2026-12-02T20:02:00Z")
    record = done.status["restoreRequest"]
    # Merge-patched status: the step keys are nulled (deleted), not just left out.
    assert record["result"] == "Succeeded"
    assert (record["step"], record["jobResult"], record["message"]) == (None, None, "")
    assert [e[:2] for e in done.events] == [("Normal", "RestoreSucceeded")]
    assert (done.conditions[0].status, done.conditions[0].reason) == ("True", "RestoreSucceeded")
    # The waiting request starts now (its own Stopping).
    nxt = _pass(restarted, done.status, other, now="2026-12-02T20:02:10Z")
    assert nxt.status["restoreRequest"]["request"] == other
    assert nxt.status["restoreRequest"]["step"] == "Stopping"


def test_a_failed_job_starts_redis_with_the_old_data_and_fails_with_its_reason() -> None:
    kube = _Kube()
    kube.sts("demo-redis-state", 1, 1)
    status = {"restoreRequest": {"request": VALUE, "jobs": [JOB], "result": "Running",
                                 "step": "Restoring", "startedAt": T0}}  # fmt: skip
    kube.objects[("Job", JOB)] = {"status": {"conditions": [
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
         "message": "Job has reached the specified backoff limit"}]}}  # fmt: skip
    starting = _pass(kube, status)
    assert on_demand.restoring(starting.status) == frozenset()
    done = _pass(kube, starting.status)
    record = done.status["restoreRequest"]
    assert record["result"] == "Failed"
    assert record["message"] == "BackoffLimitExceeded: Job has reached the specified backoff limit"
    assert [e[:2] for e in done.events] == [("Warning", "RestoreFailed")]


def test_a_job_the_api_refuses_starts_redis_again() -> None:
    kube = _Kube()
    kube.sts("demo-redis-state", 0, 0)
    kube.fail_apply = True
    status = {"restoreRequest": {"request": VALUE, "jobs": [JOB], "result": "Running",
                                 "step": "Stopping", "startedAt": T0}}  # fmt: skip
    out = _pass(kube, status)
    record = out.status["restoreRequest"]
    assert (record["step"], record["jobResult"]) == ("Starting", "Failed")
    assert "Job not created: 403" in record["message"]


def test_with_replication_the_sentinels_stop_too_and_are_waited_for() -> None:
    spec = _spec(replication={"enabled": True})
    stopped = frozenset({"redis-state"})
    replicas = _replicas(build_redis(spec, NAMES, restoring=stopped))
    assert replicas == {"demo-redis-app": 1, "demo-redis-ml": 1, "demo-redis-state": 0,
                        "demo-sentinel": 0}  # fmt: skip
    assert _replicas(build_redis(spec, NAMES))["demo-sentinel"] == 3
    kube = _Kube()
    kube.sts("demo-redis-state", 0, 0)
    kube.sts("demo-sentinel", 0, 0)
    kube.pods[STATE_PODS.replace("redis-state", "sentinel")] = ["Running"]  # still stopping
    status = {"restoreRequest": {"request": VALUE, "jobs": [JOB], "result": "Running",
                                 "step": "Stopping", "startedAt": T0}}  # fmt: skip
    assert _pass(kube, status, spec=spec).status["restoreRequest"]["step"] == "Stopping"
    kube.pods.clear()
    assert _pass(kube, status, spec=spec).status["restoreRequest"]["step"] == "Restoring"
