"""Scheduled backups: one CronJob per backed-up component (Prometheus, Grafana, Weaviate, the
app and state Redis).

The jobs run `python -m indexforge_services.common.backup` from the API image: the stack
pulls it anyway, it carries Python and this repository's package, and the backup module
needs only the standard library (no extra image to build, pin and scan).

Prometheus and Grafana keep their data on ReadWriteOnce volumes, which pods on one node only
can mount: each job is pinned to the node of the pod whose volume it reads (required pod
affinity on the hostname). The snapshot API writes the snapshot into Prometheus's own volume,
and SQLite's backup API needs the database file, so reading the volume is unavoidable; the
alternative, a sidecar in each pod, would hold memory all day for a nightly task.

The snapshot needs Prometheus's admin API (`--web.enable-admin-api`, on only while backups
are). It also offers delete_series, so who reaches port 9090 matters: per NetworkPolicy only
Grafana and the backup job, and Grafana's datasource proxy refuses every Prometheus POST but
the query endpoints (grafana/grafana#7459, #33491), so a Grafana user cannot reach it either.

Weaviate and Redis are backed up over the network, so their jobs need no node pinning and no
access to their volumes: Weaviate writes its own backup when asked through its backup API
(to the backup volume it mounts, or a bucket; see backup_weaviate.py), and Redis streams an
RDB snapshot over the replication handshake (`redis-cli --rdb`'s way), which the job writes
to the target: the app Redis (cached job status, tags) and the state Redis (job records,
queued uploads: what must survive). The ML Redis is a cache (embeddings, recomputed on a
miss): not backed up.
"""

from __future__ import annotations

from ..naming import Component, Names, labels, selector_labels
from ..spec import IndexForgeSpec
from . import backup_weaviate as wv
from . import ports
from .common import Obj, container_security, meta, service_account, tmp_mount, tmp_volume
from .credentials import (
    WEAVIATE_KEY_FILE,
    redis_password_env,
    weaviate_key_mount,
    weaviate_key_volume,
)
from .grafana import DATA_DIR as GRAFANA_DATA_DIR
from .grafana import GRAFANA_UID
from .prometheus import DATA_DIR as PROMETHEUS_DATA_DIR
from .prometheus import PROMETHEUS_UID
from .redis import REDIS_UID
from .storage import DATA_VOLUME
from .weaviate import WEAVIATE_UID

TARGET_DIR = "/backup"
MODULE = "indexforge_services.common.backup"
LABEL_SOURCE = "indexforge.io/backup-of"
LABEL_REQUEST = "indexforge.io/request"  # on-demand Jobs: "backup" or "restore"
REQUEST_JOB_TTL_SECONDS = 7 * 86400
# Group of every backup pod (fsGroup): the target volume stays owned by one group whichever
# job ran last, so kubelet never re-chowns a growing backup volume.
BACKUP_GID = 65534
# A backup that has not started within an hour of its slot waits for the next one.
STARTING_DEADLINE_SECONDS = 3600
ACTIVE_DEADLINE_SECONDS = 3600
# A file the backup program re-reads per call and on a 401 (backup_weaviate.py), so a key
# rotation while a long backup runs does not fail it.
WEAVIATE_KEY_FILE_ENV = "WEAVIATE_API_KEY_FILE"


def claim_of(names: Names, component: Component) -> str:
    """The PVC a StatefulSet of one created from its `data` claim template."""
    return f"{DATA_VOLUME}-{names.component(component)}-0"


def backup_sources(spec: IndexForgeSpec, present: list[Component]) -> list[Component]:
    """Components backed up: those deployed by this instance that have a backup."""
    if not spec.backup.enabled:
        return []
    wanted: list[Component] = ["prometheus", "grafana"]
    if spec.backup.weaviate:
        wanted.append("weaviate")
    if spec.backup.redis:
        wanted += ["redis-app", "redis-state"]
    return [c for c in wanted if c in present]


# Files the job reads on the source's volume (pinned to its node), per source.
_VOLUME_SOURCES: dict[str, tuple[int, str]] = {
    "prometheus": (PROMETHEUS_UID, PROMETHEUS_DATA_DIR),
    "grafana": (GRAFANA_UID, GRAFANA_DATA_DIR),
}
# Network sources: the job's user (Weaviate's, so retention can delete what Weaviate wrote).
_NETWORK_UID: dict[str, int] = {
    "weaviate": WEAVIATE_UID,
    "redis-app": REDIS_UID,
    "redis-state": REDIS_UID,
}
REDIS_SOURCES = ("redis-app", "redis-state")


def _command(spec: IndexForgeSpec, names: Names, source: Component) -> list[str]:
    keep = ["--target", f"{TARGET_DIR}/{source}", "--keep", str(spec.backup.retention)]
    if source == "weaviate":
        command = ["python", "-m", MODULE, "weaviate", "--url"]
        command += [names.url("weaviate", ports.WEAVIATE_HTTP), "--backend", wv.backend(spec)]
        command += ["--keep", str(spec.backup.retention)]
        if wv.backend(spec) == "filesystem":
            command += ["--backup-dir", wv.FILESYSTEM_PATH]
        return command
    if source in REDIS_SOURCES:
        host = names.fqdn(names.component(source))
        return ["python", "-m", MODULE, "redis", "--host", host, "--port", str(ports.REDIS), *keep]
    if source == "prometheus":
        return [
            "python",
            "-m",
            MODULE,
            "prometheus",
            "--url",
            names.url("prometheus", ports.PROMETHEUS),
            "--data-dir",
            PROMETHEUS_DATA_DIR,
            *keep,
        ]
    return ["python", "-m", MODULE, "grafana", "--db", f"{GRAFANA_DATA_DIR}/grafana.db", *keep]


def _cronjob(spec: IndexForgeSpec, names: Names, source: Component) -> Obj:
    backup = spec.backup
    assert backup.target is not None  # the spec requires it when enabled
    pod_labels = {LABEL_SOURCE: source, **labels(names, "backup")}
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": meta(
            names, "backup", names.backup(source), extra_labels={LABEL_SOURCE: source}
        ),
        "spec": {
            "schedule": backup.schedule,
            # Never two backups of one source at once (a slow copy overlapping the next slot).
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": STARTING_DEADLINE_SECONDS,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": ACTIVE_DEADLINE_SECONDS,
                    "template": {
                        "metadata": {"labels": pod_labels},
                        "spec": backup_pod_spec(spec, names, source),
                    },
                },
            },
        },
    }


def _env(names: Names, source: Component) -> list[Obj]:
    if source == "weaviate":
        return [{"name": WEAVIATE_KEY_FILE_ENV, "value": WEAVIATE_KEY_FILE}]
    if source in REDIS_SOURCES:
        return [redis_password_env(names, "REDISCLI_AUTH", source)]
    return []


def backup_pod_spec(spec: IndexForgeSpec, names: Names, source: Component) -> Obj:
    """The pod of one source's backup (the CronJob's, and the on-demand Job's)."""
    backup = spec.backup
    assert backup.target is not None  # the spec requires it when enabled
    target: Obj = {
        "name": "target",
        "persistentVolumeClaim": {"claimName": backup.target.volume.claim_name},
    }
    if source in _VOLUME_SOURCES:
        uid, data_dir = _VOLUME_SOURCES[source]
        mounts: list[Obj] = [
            # Read-write: the job deletes Prometheus's snapshot after copying it, and
            # SQLite may need to roll back a hot journal before reading grafana.db.
            {"name": "source", "mountPath": data_dir},
            {"name": "target", "mountPath": TARGET_DIR},
            tmp_mount(),
        ]
        volumes: list[Obj] = [
            {"name": "source", "persistentVolumeClaim": {"claimName": claim_of(names, source)}},
            target,
            tmp_volume(),
        ]
    else:
        uid = _NETWORK_UID[source]
        on_volume = source != "weaviate" or wv.backend(spec) == "filesystem"
        mounts = [{"name": "target", "mountPath": TARGET_DIR}] if on_volume else []
        mounts.append(tmp_mount())
        volumes = [target] if on_volume else []
        volumes.append(tmp_volume())
        if source == "weaviate":
            mounts.append(weaviate_key_mount())
            volumes.append(weaviate_key_volume(names))
    container: Obj = {
        "name": "backup",
        "image": spec.api.image,
        "imagePullPolicy": spec.api.image_pull_policy,
        "command": _command(spec, names, source),
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "securityContext": container_security(),
        "volumeMounts": mounts,
    }
    source_env = _env(names, source)
    if source_env:
        container["env"] = source_env
    pod_spec: Obj = {
        "serviceAccountName": names.component("backup"),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": "Never",
    }
    if source in _VOLUME_SOURCES:
        # The source volume is ReadWriteOnce: run where its pod runs.
        pod_spec["affinity"] = {
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchLabels": selector_labels(names, source)},
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        }
    pod_spec.update(
        {
            "securityContext": {
                # The source's own user: its files are readable (and the snapshot deletable).
                "runAsNonRoot": True,
                "runAsUser": uid,
                "runAsGroup": uid,
                "fsGroup": BACKUP_GID,
                "fsGroupChangePolicy": "OnRootMismatch",
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            "volumes": volumes,
        }
    )
    if spec.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": n} for n in spec.image_pull_secrets]
    return pod_spec


def restore_command(spec: IndexForgeSpec, names: Names, backup_id: str) -> list[str]:
    """Weaviate's restore through its backup API (it refuses to overwrite a collection)."""
    url = names.url("weaviate", ports.WEAVIATE_HTTP)
    command = ["python", "-m", MODULE, "restore-weaviate", "--url", url]
    return [*command, "--backend", wv.backend(spec), "--id", backup_id]


def request_job(
    spec: IndexForgeSpec,
    names: Names,
    source: Component,
    *,
    name: str,
    request: str,
    command: list[str] | None = None,
) -> Obj:
    """A Job run once for an on-demand request (on_demand.py): the CronJob's pod, or the same
    pod running ``command`` (a restore). ``request`` is "backup" or "restore"; the label keeps
    the Job out of pruning, since the operator creates it once instead of desiring it."""
    pod_spec = backup_pod_spec(spec, names, source)
    if command is not None:
        pod_spec["containers"][0]["command"] = command
    extra = {LABEL_SOURCE: source, LABEL_REQUEST: request}
    pod_labels = {**extra, **labels(names, "backup")}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(names, "backup", name, extra_labels=extra),
        "spec": {
            # A restore is not retried blindly: a half-done one makes the next attempt fail.
            "backoffLimit": 2 if request == "backup" else 0,
            "activeDeadlineSeconds": ACTIVE_DEADLINE_SECONDS,
            # Kept a week for its logs; the CR's status keeps the result after that.
            "ttlSecondsAfterFinished": REQUEST_JOB_TTL_SECONDS,
            "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
        },
    }


def build_backups(spec: IndexForgeSpec, names: Names, present: list[Component]) -> list[Obj]:
    """`present`: the components this instance deploys (decisions.components)."""
    sources = backup_sources(spec, present)
    if not sources:
        return []
    return [service_account(names, "backup"), *(_cronjob(spec, names, s) for s in sources)]
