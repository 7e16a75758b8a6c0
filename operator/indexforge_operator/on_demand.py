"""On-demand backups and restores, asked for by annotations on the IndexForge.

    kubectl annotate indexforge/<name> indexforge.io/backup-now=<any new value>
    kubectl annotate indexforge/<name> indexforge.io/restore=weaviate/<backup id>

Why annotations and not an `IndexForgeBackup`/`IndexForgeRestore` CRD: a request is a one-off
"do it now" on one instance, whose only state is "which request did I handle and how did it
end" — that fits the instance's own status. A second CRD would need its own schema, RBAC,
watch, ownership and GC, and a place to report that the IndexForge it names is missing,
for no more than this. What annotations lose: a history of requests (status keeps the last
of each kind, the Jobs stay a week) and admission-time validation (a bad value is reported
as `Refused` in status and an Event instead).

The value is the request's identity: the operator records it in status
(`backupRequest.request`) and runs nothing for a value it already handled, so re-applying
a manifest does not back up again; a new value is a new request. The Jobs run the
CronJobs' pod (builders/backup.py) and carry a label that keeps them out of pruning: they
are created once, not desired on every pass.

Restore is destructive, so it names the component and the backup id explicitly:
`weaviate/<backup id>` runs one Job against Weaviate's backup API (it restores into the
running cluster); `redis-app/<file>` and `redis-state/<file>` (a file the backup job wrote,
`redis-<stamp>.rdb`) replace the data of a stopped Redis over several passes — stop, restore
Job, start — whose step is kept in status (redis_restore.py). One restore at a time: a new
value while one runs waits until it has finished.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from kubernetes.client.exceptions import ApiException

from indexforge_operator import ownership, redis_restore
from indexforge_operator.builders import backup_weaviate
from indexforge_operator.builders.backup import (
    LABEL_REQUEST,
    backup_sources,
    claim_of,
    request_job,
    restore_command,
)
from indexforge_operator.builders.redis import RedisComponent
from indexforge_operator.builders.redis_restore import restore_job
from indexforge_operator.conditions import Condition
from indexforge_operator.kube import Kube, error_message
from indexforge_operator.naming import Component, Names, selector_labels
from indexforge_operator.spec import IndexForgeSpec

Obj = dict[str, Any]
Kind = Literal["backup", "restore"]
BACKUP_ANNOTATION = "indexforge.io/backup-now"
RESTORE_ANNOTATION = "indexforge.io/restore"
ANNOTATIONS: dict[Kind, str] = {"backup": BACKUP_ANNOTATION, "restore": RESTORE_ANNOTATION}
STATUS_FIELDS: dict[Kind, str] = {"backup": "backupRequest", "restore": "restoreRequest"}
CONDITIONS: dict[Kind, str] = {"backup": "OnDemandBackup", "restore": "Restore"}
STAMP = "%Y-%m-%dT%H:%M:%SZ"  # the reconciler's `now`
# Keys of a record only some requests have (a Redis restore's steps): null deletes them.
CLEARED: dict[str, Any] = {"message": "", "step": None, "startedAt": None, "jobResult": None}
MAX_REQUEST = 253  # what status keeps of a value (and compares)
# Weaviate backup ids: lowercase letters, digits, '-' and '_' (what the backup job names).
BACKUP_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,127}$")
# Redis backups: the file names the backup job gives (backup.py's _NAME["redis"]).
REDIS_BACKUP_ID = re.compile(r"^redis-[0-9]{8}T[0-9]{6}Z\.rdb$")
REDIS_RESTORABLE: tuple[RedisComponent, ...] = ("redis-app", "redis-state")
INVALID = (
    "indexforge.io/restore must be weaviate/<backup id> (a-z, 0-9, - and _) or "
    "redis-app|redis-state/redis-<YYYYmmddTHHMMSSZ>.rdb"
)


def is_request_job(obj: Obj) -> bool:
    """An on-demand Job: created once by this module, never pruned."""
    return obj.get("kind") == "Job" and LABEL_REQUEST in (obj["metadata"].get("labels") or {})


def _suffix(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:6]


def job_name(names: Names, source: Component, kind: Kind, value: str) -> str:
    """<instance>-<source>-backup-<hash> (<= 59 characters): one name per request value, so a
    retried pass re-applies the same Job instead of starting a second one."""
    base = names.backup(source)
    if kind == "restore":
        base = base.removesuffix("-backup") + "-restore"
    return f"{base}-{_suffix(value)}"


def plan_backup(
    spec: IndexForgeSpec, names: Names, present: list[Component], value: str
) -> tuple[list[Obj], tuple[str, str] | None]:
    """Jobs backing up every scheduled source, or (reason, message) why none can run."""
    sources = backup_sources(spec, present)
    if not sources:
        return [], ("BackupNotConfigured", "backup-now needs spec.backup.enabled and a target")
    jobs = [
        request_job(spec, names, s, name=job_name(names, s, "backup", value), request="backup")
        for s in sources
    ]
    return jobs, None


def plan_restore(
    spec: IndexForgeSpec, names: Names, value: str
) -> tuple[list[Obj], tuple[str, str] | None]:
    """The restore Job for `<component>/<backup id>`, or (reason, message) why not. A Redis
    restore's Job is not created here but once its Redis has stopped (redis_restore.py)."""
    component, _, backup_id = value.partition("/")
    if component in REDIS_RESTORABLE:
        return [], check_redis_restore(spec, component, backup_id)
    if component != "weaviate" or not BACKUP_ID.match(backup_id):
        return [], ("RestoreInvalid", f"{INVALID}, got {value[:100]!r}")
    if not backup_weaviate.backs_up_weaviate(spec):
        return [], (
            "RestoreNotConfigured",
            "restoring Weaviate needs spec.backup (enabled, weaviate, a target): Weaviate "
            "reads backups through the same backup module",
        )
    name = job_name(names, "weaviate", "restore", value)
    command = restore_command(spec, names, backup_id)
    return [
        request_job(spec, names, "weaviate", name=name, request="restore", command=command)
    ], None


def check_redis_restore(
    spec: IndexForgeSpec, component: str, backup_id: str
) -> tuple[str, str] | None:
    """Why `<component>/<backup id>` cannot be restored from the spec alone, or None."""
    if not REDIS_BACKUP_ID.match(backup_id):
        return "RestoreInvalid", f"{INVALID}, got {component}/{backup_id[:80]!r}"
    if not (spec.backup.enabled and spec.backup.redis and spec.backup.target is not None):
        return (
            "RestoreNotConfigured",
            f"restoring {component} needs spec.backup (enabled, redis, a target): the "
            "backups are read from the target volume",
        )
    instance = spec.redis.app if component == "redis-app" else spec.redis.state
    if not instance.persistence.enabled:
        return (
            "RestoreNoVolume",
            f"{component} keeps its data in an emptyDir (persistence.enabled false): there "
            "is no volume to restore into",
        )
    return None


def _redis_component(record: Obj) -> RedisComponent | None:
    component = str(record.get("request", "")).partition("/")[0]
    for known in REDIS_RESTORABLE:
        if component == known:
            return known
    return None


def restoring(status: Obj | None) -> frozenset[str]:
    """Redis components a running restore keeps stopped (the builders render 0 replicas)."""
    record = (status or {}).get(STATUS_FIELDS["restore"]) or {}
    component = _redis_component(record)
    if record.get("result") != "Running" or component is None:
        return frozenset()
    if record.get("step") in redis_restore.STOPPED_STEPS:
        return frozenset({component})
    return frozenset()


def job_result(job: Obj | None) -> tuple[redis_restore.JobState, str]:
    """(Running|Succeeded|Failed, message) of one Job as the API server reports it."""
    if job is None:
        return "Failed", "the Job was deleted before it finished"
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return "Succeeded", ""
        if cond.get("type") == "Failed":
            reason = cond.get("reason") or "Failed"
            return "Failed", f"{reason}: {cond.get('message') or 'the Job failed'}"
    return "Running", ""


def combine(results: Mapping[str, tuple[str, str]]) -> tuple[str, str]:
    """One result for a request's Jobs: any failure fails it, any running keeps it running."""
    failed = [f"Job {name}: {message}" for name, (state, message) in results.items()
              if state == "Failed"]  # fmt: skip
    if failed:
        return "Failed", "; ".join(failed)
    if any(state == "Running" for state, _ in results.values()):
        return "Running", ""
    return "Succeeded", ""


def condition(kind: Kind, record: Obj) -> Condition:
    word = kind.title()  # Backup / Restore: reasons BackupSucceeded, RestoreFailed, ...
    jobs = ", ".join(record.get("jobs") or []) or "no Job"
    result, message = record["result"], record.get("message") or ""
    if result == "Succeeded":
        return Condition(CONDITIONS[kind], "True", f"{word}Succeeded", f"{jobs} succeeded")
    if result == "Running" and record.get("step"):
        what = f"{record['request']}: {record['step']}"
        return Condition(CONDITIONS[kind], "Unknown", f"{word}Running", f"{what} ({jobs})")
    if result == "Running":
        return Condition(CONDITIONS[kind], "Unknown", f"{word}Running", f"{jobs} running")
    if result == "Refused":
        return Condition(CONDITIONS[kind], "False", message.split(":")[0], message)
    return Condition(CONDITIONS[kind], "False", f"{word}Failed", message)


def _finished(record: Obj) -> bool:
    return record.get("result") in ("Succeeded", "Failed")


@dataclass
class Handled:
    status: Obj = field(default_factory=dict)
    conditions: list[Condition] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    writes: int = 0


def _start(kube: Kube, body: Obj, kind: Kind, value: str, jobs: list[Obj]) -> Obj:
    record: Obj = {"request": value[:MAX_REQUEST], "jobs": [], "result": "Running"}
    try:
        for job in jobs:
            kube.apply(ownership.with_owner(job, body))
            record["jobs"].append(job["metadata"]["name"])
    except ApiException as exc:
        # Recorded like any failure: the same value is not retried, a new one is.
        record.update(result="Failed", message=f"Job not created: {error_message(exc)}")
    return record


def _refresh(kube: Kube, namespace: str, record: Obj) -> Obj:
    results = {}
    for name in record.get("jobs") or []:
        ref: Obj = {"apiVersion": "batch/v1", "kind": "Job"}
        ref["metadata"] = {"name": name, "namespace": namespace}
        results[name] = job_result(kube.get(ref))
    result, message = combine(results)
    return {**record, "result": result, "message": message}


def _seconds(stamp: str) -> float:
    return datetime.datetime.strptime(stamp, STAMP).replace(tzinfo=datetime.UTC).timestamp()


def _ref(kind: str, name: str, namespace: str) -> Obj:
    api = "batch/v1" if kind == "Job" else "apps/v1"
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": namespace}}


def _stopped_sets(spec: IndexForgeSpec, component: RedisComponent) -> list[Component]:
    """What a restore of `component` stops: with replication, every state Redis pod and the
    Sentinels (build_redis says why)."""
    if component == "redis-state" and spec.redis.state.replication.enabled:
        return [component, "sentinel"]
    return [component]


def _is_ready(sts: Obj | None) -> bool:
    if sts is None:
        return False
    want = int(sts.get("spec", {}).get("replicas", 1))
    st = sts.get("status") or {}
    current = int(st.get("observedGeneration", 0)) >= int(sts["metadata"].get("generation", 0))
    return want > 0 and current and int(st.get("readyReplicas", 0) or 0) >= want


def _pod_count(
    kube: Kube, namespace: str, labels: Mapping[str, str], *, finished_count: bool = True
) -> int:
    """Pods matching ``labels``; ``finished_count`` False: not those whose containers have
    all ended (phase Succeeded/Failed: a finished Job's pod stays until the Job goes)."""
    pods = kube.list_pods(namespace, ",".join(f"{k}={v}" for k, v in labels.items()))
    if not finished_count:
        done = ("Succeeded", "Failed")
        pods = [p for p in pods if (p.get("status") or {}).get("phase") not in done]
    return len(pods)


def _start_redis(kube: Kube, spec: IndexForgeSpec, names: Names, value: str, now: str) -> Obj:
    """A new Redis restore: Refused when a volume is missing, else Stopping."""
    component = _redis_component({"request": value})
    assert component is not None and spec.backup.target is not None  # plan_restore checked
    record: Obj = {"request": value[:MAX_REQUEST], "jobs": [], "result": "Refused"}
    backups = spec.backup.target.volume.claim_name
    # Listed (the operator may list PVCs, volumes.py); once per new request.
    path = f"/api/v1/namespaces/{names.namespace}/persistentvolumeclaims"
    existing = {p["metadata"]["name"] for p in kube.list_path(path, "")}
    for claim, what in ((claim_of(names, component), f"the volume of {component}"),
                        (backups, "the backup volume")):  # fmt: skip
        if claim not in existing:
            record["message"] = (
                f"RestoreTargetMissing: {what}, PVC {claim}, does not exist; nothing was stopped"
            )
            return record
    job = job_name(names, component, "restore", value)
    return {**record, "jobs": [job], "result": "Running", "step": "Stopping", "startedAt": now}


def _observe(
    kube: Kube, spec: IndexForgeSpec, names: Names, record: Obj, elapsed: float
) -> redis_restore.Observed:
    """Only what the record's step needs (a few GETs per pass, only while it runs)."""
    component = _redis_component(record)
    assert component is not None
    ns, step, job = names.namespace, record["step"], record["jobs"][0]
    sets = _stopped_sets(spec, component)
    if step == "Starting":
        ready = all(_is_ready(kube.get(_ref("StatefulSet", names.component(c), ns)))
                    for c in sets)  # fmt: skip
        return redis_restore.Observed(elapsed, ready=ready)
    live_job = kube.get(_ref("Job", job, ns))
    result = None if live_job is None else job_result(live_job)
    if step == "Restoring":
        job_pods = _pod_count(kube, ns, {"job-name": job}, finished_count=False)
        return redis_restore.Observed(elapsed, job=result, job_pods=job_pods)
    statefulsets = [kube.get(_ref("StatefulSet", names.component(c), ns)) for c in sets]
    scaled_down = all(s is None or s.get("spec", {}).get("replicas") == 0 for s in statefulsets)
    pods = sum(_pod_count(kube, ns, selector_labels(names, c)) for c in sets)
    return redis_restore.Observed(elapsed, scaled_down=scaled_down, pods=pods, job=result)


def _advance_redis(
    kube: Kube, body: Obj, spec: IndexForgeSpec, names: Names, record: Obj, now: str
) -> tuple[Obj, list[tuple[str, str, str]], int]:
    """One step of a running Redis restore: (new record, events, writes)."""
    elapsed = _seconds(now) - _seconds(record.get("startedAt") or now)
    observed = _observe(kube, spec, names, record, elapsed)
    nxt = redis_restore.decide(
        record["step"],
        observed,
        job_result=record.get("jobResult"),
        job_message=record.get("message") or "",
    )
    events: list[tuple[str, str, str]] = []
    writes = 0
    request, job = record["request"], record["jobs"][0]
    component = _redis_component(record)
    assert component is not None
    if nxt.create_job:
        backup_id = request.partition("/")[2]
        instance = spec.redis.app if component == "redis-app" else spec.redis.state
        obj = restore_job(spec, names, instance, component, name=job, backup_id=backup_id)
        try:
            kube.apply(ownership.with_owner(obj, body))
            writes += 1
            message = f"{request}: {component} stopped; Job {job} restores the backup"
            events.append(("Normal", "RestoreJobStarted", message))
        except ApiException as exc:
            # Nothing touched the data: Redis starts again with it.
            message = f"Job not created: {error_message(exc)}"
            nxt = redis_restore.Next("Starting", job_result="Failed", message=message)
    out = {k: v for k, v in record.items() if k not in ("step", "jobResult", "message")}
    if nxt.step is None:
        out.update(result=nxt.result, message=nxt.message)
        return out, events, writes
    out["step"] = nxt.step
    if nxt.job_result is not None:
        out["jobResult"] = nxt.job_result
    if nxt.message:
        out["message"] = nxt.message
    if nxt.step == "Starting" and record["step"] != "Starting":
        ended = str(out["jobResult"]).lower()
        message = f"{request}: Job {job} {ended}; starting {component}"
        events.append(("Normal", "RestoreStarting", message))
    return out, events, writes


def handle(
    kube: Kube,
    body: Obj,
    spec: IndexForgeSpec,
    names: Names,
    *,
    present: list[Component],
    write: bool,
    now: str,
    kinds: tuple[Kind, ...] = ("backup", "restore"),
) -> Handled:
    """Start what the annotations newly ask for, follow what runs; ``write`` False (paused):
    only report. Asks nothing of the API server while no request is running."""
    annotations = body["metadata"].get("annotations") or {}
    previous = body.get("status") or {}
    out = Handled()
    for kind in kinds:
        before: Obj | None = previous.get(STATUS_FIELDS[kind])
        value: str = annotations.get(ANNOTATIONS[kind]) or ""
        record = before
        new = bool(value) and (before is None or before.get("request") != value[:MAX_REQUEST])
        # One restore at a time: a new value waits until the running one has finished.
        waits = kind == "restore" and before is not None and before.get("result") == "Running"
        if value and new and write and not waits:
            if kind == "backup":
                jobs, refusal = plan_backup(spec, names, present, value)
            else:
                jobs, refusal = plan_restore(spec, names, value)
            if refusal is not None:
                record = {"request": value[:MAX_REQUEST], "jobs": [], "result": "Refused",
                          "message": f"{refusal[0]}: {refusal[1]}"}  # fmt: skip
            elif kind == "restore" and _redis_component({"request": value}) is not None:
                record = _start_redis(kube, spec, names, value, now)
            else:
                record = _start(kube, body, kind, value, jobs)
                out.writes += len(record["jobs"])
            if record["result"] == "Refused":
                reason, _, message = record["message"].partition(": ")
                out.events.append(("Warning", reason, message))
            elif record["result"] == "Running":
                started = ", ".join(record["jobs"])
                if record.get("step"):
                    started = f"stopping {_redis_component(record)} for Job {started}"
                out.events.append(("Normal", f"{kind.title()}Started", f"{value}: {started}"))
        elif record is not None and record.get("result") == "Running" and record.get("step"):
            if write:
                record, events, writes = _advance_redis(kube, body, spec, names, record, now)
                out.events += events
                out.writes += writes
        elif record is not None and record.get("result") == "Running":
            record = _refresh(kube, names.namespace, record)
        if record is None:
            continue
        if _finished(record) and not (
            before is not None and before.get("request") == record["request"] and _finished(before)
        ):
            ok = record["result"] == "Succeeded"
            detail = ", ".join(record["jobs"]) + " succeeded" if ok else record.get("message", "")
            reason = f"{kind.title()}{record['result']}"
            out.events.append(
                ("Normal" if ok else "Warning", reason, f"{record['request']}: {detail}")
            )
        if kind == "restore" and record is not before:
            # Status is merge-patched: a key left out keeps its old value, so a new or
            # changed record says explicitly which of the Redis restore's keys it lacks.
            record = {**CLEARED, **record}
        out.status[STATUS_FIELDS[kind]] = record
        cond = condition(kind, record)
        if value and new and waits:
            cond = Condition(cond.type, cond.status, cond.reason,
                             f"{cond.message}; {value[:100]} waits for it")  # fmt: skip
        out.conditions.append(cond)
    return out
