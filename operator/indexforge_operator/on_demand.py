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

Restore is destructive, so it names the component and the backup id explicitly. Only
Weaviate is restored this way: its backup API restores into the running cluster. A Redis
restore needs the Redis stopped (scaled to 0) while its data directory is replaced, which is
left to the documented manual procedure (README) and refused here with that reason.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from kubernetes.client.exceptions import ApiException

from indexforge_operator import ownership
from indexforge_operator.builders import backup_weaviate
from indexforge_operator.builders.backup import (
    LABEL_REQUEST,
    backup_sources,
    request_job,
    restore_command,
)
from indexforge_operator.conditions import Condition
from indexforge_operator.kube import Kube, error_message
from indexforge_operator.naming import Component, Names
from indexforge_operator.spec import IndexForgeSpec

Obj = dict[str, Any]
Kind = Literal["backup", "restore"]
BACKUP_ANNOTATION = "indexforge.io/backup-now"
RESTORE_ANNOTATION = "indexforge.io/restore"
ANNOTATIONS: dict[Kind, str] = {"backup": BACKUP_ANNOTATION, "restore": RESTORE_ANNOTATION}
STATUS_FIELDS: dict[Kind, str] = {"backup": "backupRequest", "restore": "restoreRequest"}
CONDITIONS: dict[Kind, str] = {"backup": "OnDemandBackup", "restore": "Restore"}
MAX_REQUEST = 253  # what status keeps of a value (and compares)
# Weaviate backup ids: lowercase letters, digits, '-' and '_' (what the backup job names).
BACKUP_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,127}$")


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
    """The restore Job for `<component>/<backup id>`, or (reason, message) why not."""
    component, _, backup_id = value.partition("/")
    if component in ("redis-app", "redis-state"):
        return [], (
            "RestoreNotSupported",
            f"{component} is restored by hand: it must be scaled to 0 while its data is "
            "replaced (README, Weaviate and Redis backups)",
        )
    if component != "weaviate" or not BACKUP_ID.match(backup_id):
        return [], (
            "RestoreInvalid",
            f"indexforge.io/restore must be weaviate/<backup id> (a-z, 0-9, - and _), got "
            f"{value[:100]!r}",
        )
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


def job_result(job: Obj | None) -> tuple[str, str]:
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


def handle(
    kube: Kube,
    body: Obj,
    spec: IndexForgeSpec,
    names: Names,
    *,
    present: list[Component],
    write: bool,
) -> Handled:
    """Start what the annotations newly ask for, follow what runs; ``write`` False (paused):
    only report. Asks nothing of the API server while no request is running."""
    annotations = body["metadata"].get("annotations") or {}
    previous = body.get("status") or {}
    out = Handled()
    for kind in ("backup", "restore"):
        before: Obj | None = previous.get(STATUS_FIELDS[kind])
        value = annotations.get(ANNOTATIONS[kind])
        record = before
        if value and write and (before is None or before.get("request") != value[:MAX_REQUEST]):
            if kind == "backup":
                jobs, refusal = plan_backup(spec, names, present, value)
            else:
                jobs, refusal = plan_restore(spec, names, value)
            if refusal is not None:
                record = {"request": value[:MAX_REQUEST], "jobs": [], "result": "Refused",
                          "message": f"{refusal[0]}: {refusal[1]}"}  # fmt: skip
                out.events.append(("Warning", refusal[0], refusal[1]))
            else:
                record = _start(kube, body, kind, value, jobs)
                out.writes += len(record["jobs"])
                if record["result"] == "Running":
                    started = ", ".join(record["jobs"])
                    out.events.append(("Normal", f"{kind.title()}Started", f"{value}: {started}"))
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
        out.status[STATUS_FIELDS[kind]] = record
        out.conditions.append(condition(kind, record))
    return out
