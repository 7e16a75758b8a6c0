"""The Job that restores an RDB backup into a stopped Redis's data volume (on_demand.py runs it
while the Redis StatefulSet is scaled to 0; redis_restore.py decides when).

It runs the Redis image itself: that image ships `redis-check-rdb`, which parses the whole
file and its checksum, a stronger check than the backup job's (magic, length, EOF opcode).
The pod mounts the Redis's own claim (`data-<statefulset>-0`) read-write and the backup
volume read-only (no fsGroup change there), as Redis's user, and needs no network.

The script (POSIX sh, busybox) never touches the data before the backup has been copied
onto the data volume and verified there. It then writes the backup in both forms Redis
loads at start, as `restore-redis` in backup_redis.py does: `dump.rdb` (appendonly no) and an
AOF directory whose base is the RDB (appendonly yes, the default: Redis with AOF on ignores
a lone dump.rdb and would start empty, and an old AOF left beside it would win). The old
files are moved aside first and moved back if any step fails, so a failed restore leaves the
data as it was; they are deleted only after the new ones are in place.

Only the volume target: Redis backups are always written there (an S3 target is Weaviate's).
"""

from __future__ import annotations

from ..naming import Names, labels
from ..spec import IndexForgeSpec, RedisInstance
from .backup import (
    LABEL_REQUEST,
    LABEL_SOURCE,
    REQUEST_JOB_TTL_SECONDS,
    TARGET_DIR,
    claim_of,
)
from .common import Obj, container_security, meta, pod_security, tmp_mount, tmp_volume
from .redis import REDIS_UID, RedisComponent

DATA_DIR = "/data"
# Shorter than the overall restore timeout (redis_restore.py): the Job always ends first.
ACTIVE_DEADLINE_SECONDS = 1800

# $1: the backup file, $2: Redis's data directory.
SCRIPT = """\
set -eu
backup="$1"; data="$2"
aof=appendonlydir; base=appendonly.aof.1.base.rdb; manifest=appendonly.aof.manifest
stage="$data/.restore-new"; old="$data/.restore-old"
fail() { echo "restore: FAILED: $*" >&2; exit 1; }

[ -f "$backup" ] || fail "backup $backup not found (backups: $(ls "$(dirname "$backup")" \
  2>/dev/null | tr '\\n' ' '))"
[ -d "$data" ] || fail "data directory $data not found"
rm -rf "$stage" "$old"
mkdir "$stage" "$stage/$aof"
# Copy first, then check the copy: what is checked is what Redis will load.
cp "$backup" "$stage/dump.rdb" || { rm -rf "$stage"; fail "cannot copy $backup into $data"; }
if ! redis-check-rdb "$stage/dump.rdb" > "$stage/check.log" 2>&1; then
  cat "$stage/check.log" >&2; rm -rf "$stage"
  fail "$backup is not a valid RDB file; the data in $data is untouched"
fi
cp "$stage/dump.rdb" "$stage/$aof/$base"
printf 'file %s seq 1 type b\\n' "$base" > "$stage/$aof/$manifest"
rm -f "$stage/check.log"

# Swap: the old files aside, the new ones in; any failure puts the old ones back.
mkdir "$old"
undo() {
  for f in dump.rdb "$aof"; do
    if [ -e "$old/$f" ]; then rm -rf "${data:?}/$f"; mv "$old/$f" "$data/$f"; fi
  done
  rm -rf "$stage" "$old"
  fail "cannot replace the data in $data; the old data was put back"
}
for f in dump.rdb "$aof" appendonly.aof; do
  if [ -e "$data/$f" ]; then mv "$data/$f" "$old/$f" || undo; fi
done
mv "$stage/dump.rdb" "$data/dump.rdb" || undo
mv "$stage/$aof" "$data/$aof" || undo
sync
rm -rf "$stage" "$old"
echo "restore: $backup restored into $data ($(wc -c < "$data/dump.rdb") bytes)"
"""


def backup_file(component: RedisComponent, backup_id: str) -> str:
    """Where the backup job wrote `backup_id` (backup.py: <target>/<component>/<file>)."""
    return f"{TARGET_DIR}/{component}/{backup_id}"


def restore_job(
    spec: IndexForgeSpec,
    names: Names,
    instance: RedisInstance,
    component: RedisComponent,
    *,
    name: str,
    backup_id: str,
) -> Obj:
    """One restore Job (backoffLimit 0: a retry is a new request)."""
    target = spec.backup.target
    assert target is not None  # validated by the caller (on_demand.plan_restore)
    extra = {LABEL_SOURCE: component, LABEL_REQUEST: "restore"}
    pod_labels = {**extra, **labels(names, "backup")}
    container: Obj = {
        "name": "restore",
        "image": instance.image,
        "imagePullPolicy": instance.image_pull_policy,
        "command": ["sh", "-c", SCRIPT, "restore", backup_file(component, backup_id), DATA_DIR],
        "resources": {
            "requests": {"cpu": "50m", "memory": "32Mi"},
            "limits": {"cpu": "500m", "memory": "128Mi"},
        },
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "data", "mountPath": DATA_DIR},
            {"name": "target", "mountPath": TARGET_DIR, "readOnly": True},
            tmp_mount(),
        ],
    }
    pod_spec: Obj = {
        "serviceAccountName": names.component("backup"),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": "Never",
        # Redis's own user and group: the data keeps its owner, no re-chown of the volume.
        "securityContext": pod_security(REDIS_UID),
        "containers": [container],
        "volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": claim_of(names, component)}},
            {
                "name": "target",
                # Read-only at the volume: kubelet changes no group ownership on it.
                "persistentVolumeClaim": {
                    "claimName": target.volume.claim_name,
                    "readOnly": True,
                },
            },
            tmp_volume(),
        ],
    }
    if spec.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": n} for n in spec.image_pull_secrets]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(names, "backup", name, extra_labels=extra),
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": ACTIVE_DEADLINE_SECONDS,
            "ttlSecondsAfterFinished": REQUEST_JOB_TTL_SECONDS,
            "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
        },
    }
