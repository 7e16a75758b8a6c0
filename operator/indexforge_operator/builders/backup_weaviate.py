"""What Weaviate itself needs for backups: the backup module and where it writes.

Weaviate writes its backups (its backup API, run by the backup job): with the filesystem
backend every Weaviate pod mounts the backup volume and writes under `weaviate/` there;
with an S3 target it writes to the bucket with keys read from the user's Secret. Kept out
of weaviate.py so the cluster settings there and the backup settings here change apart.
"""

from __future__ import annotations

from typing import Literal

from ..spec import IndexForgeSpec
from .common import Obj, env

BACKUP_MOUNT = "/backup"
FILESYSTEM_PATH = f"{BACKUP_MOUNT}/weaviate"
VOLUME = "backup"
S3_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
Backend = Literal["filesystem", "s3"]


def backs_up_weaviate(spec: IndexForgeSpec) -> bool:
    return spec.backup.enabled and spec.backup.weaviate and spec.backup.target is not None


def backend(spec: IndexForgeSpec) -> Backend:
    target = spec.backup.target
    return "s3" if target is not None and target.s3 is not None else "filesystem"


def backup_modules(spec: IndexForgeSpec) -> list[str]:
    """Modules to enable beside the vectorizer."""
    return [f"backup-{backend(spec)}"] if backs_up_weaviate(spec) else []


def backup_env(spec: IndexForgeSpec) -> list[Obj]:
    target = spec.backup.target
    if not backs_up_weaviate(spec) or target is None:
        return []
    s3 = target.s3
    if s3 is None:
        return [env("BACKUP_FILESYSTEM_PATH", FILESYSTEM_PATH)]
    out = [
        env("BACKUP_S3_BUCKET", s3.bucket),
        env("BACKUP_S3_ENDPOINT", s3.endpoint),
        env("BACKUP_S3_USE_SSL", s3.use_ssl),
    ]
    if s3.path:
        out.append(env("BACKUP_S3_PATH", s3.path))
    if s3.region:
        out.append(env("AWS_REGION", s3.region))
    out += [
        {"name": k, "valueFrom": {"secretKeyRef": {"name": s3.credentials_secret, "key": k}}}
        for k in S3_KEYS
    ]
    return out


def backup_volumes(spec: IndexForgeSpec) -> list[Obj]:
    """The backup volume in Weaviate's pods (filesystem backend only)."""
    target = spec.backup.target
    if not backs_up_weaviate(spec) or target is None or target.s3 is not None:
        return []
    return [{"name": VOLUME, "persistentVolumeClaim": {"claimName": target.volume.claim_name}}]


def backup_mounts(spec: IndexForgeSpec) -> list[Obj]:
    return [{"name": VOLUME, "mountPath": BACKUP_MOUNT}] if backup_volumes(spec) else []
