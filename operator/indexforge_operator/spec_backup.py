"""Spec of scheduled backups: when, how many are kept, and where they are written.

Each component that can be backed up gets its own CronJob: Prometheus's TSDB snapshot,
Grafana's database, Weaviate through its backup API, the app and state Redis as RDB snapshots. Every
backup goes to the target volume, except Weaviate's when `target.s3` names a bucket (Weaviate
writes to it itself through its backup-s3 module; keys only ever come from a Secret).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from .spec_common import DnsSubdomain, SpecModel, cel, rules

# Five cron fields (numbers, *, ranges, steps, lists) or one of the @-macros CronJobs accept.
CRON_PATTERN = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)"
    r"|[0-9*,/-]+ [0-9*,/-]+ [0-9*,/-]+ [0-9*,/-]+ [0-9*,/-]+)$"
)
Cron = Annotated[str, StringConstraints(max_length=64, pattern=CRON_PATTERN)]


class BackupVolume(SpecModel):
    """An existing PersistentVolumeClaim the backups are written to."""

    claim_name: DnsSubdomain = Field(
        description="Name of a PVC in the IndexForge's namespace. Every backup job mounts it, "
        "each on the node of the data it copies, so it should be ReadWriteMany (with "
        "ReadWriteOnce, Prometheus and Grafana must share a node). Backups go to "
        "<component>/ subdirectories."
    )


class BackupS3(SpecModel):
    """An S3-compatible bucket for Weaviate's backups (Weaviate's backup-s3 module)."""

    bucket: Annotated[str, StringConstraints(max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]*$")] = (
        Field(description="Bucket name (it must exist).")
    )
    endpoint: Annotated[
        str, StringConstraints(max_length=253, pattern=r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
    ] = Field(
        default="s3.amazonaws.com",
        description="host[:port] of the S3 API (MinIO, Ceph RGW, a cloud's S3 endpoint).",
    )
    path: Annotated[str, StringConstraints(max_length=253, pattern=r"^[-_./a-zA-Z0-9]*$")] = Field(
        default="", description="Prefix of the backups inside the bucket."
    )
    region: Annotated[str, StringConstraints(max_length=64, pattern=r"^[a-z0-9-]*$")] = Field(
        default="", description="Region, when the endpoint needs one."
    )
    use_ssl: bool = Field(default=True, description="HTTPS to the endpoint.")
    credentials_secret: DnsSubdomain = Field(
        description="Secret in the IndexForge's namespace with the keys AWS_ACCESS_KEY_ID "
        "and AWS_SECRET_ACCESS_KEY (never inline). Retention in a bucket is its lifecycle "
        "rule: the backup job cannot delete objects there."
    )


class BackupTarget(SpecModel):
    """Where backups are written."""

    volume: BackupVolume = Field(description="A PersistentVolumeClaim.")
    s3: BackupS3 | None = Field(
        default=None,
        description="Weaviate's backups go to this bucket instead of the volume (mounted by "
        "every Weaviate pod otherwise, so with several replicas it must be ReadWriteMany).",
    )


class BackupSpec(SpecModel):
    """Scheduled backups of Prometheus (TSDB snapshot), Grafana (grafana.db), Weaviate
    (backup API) and the app and state Redis (RDB), for the components this instance deploys. The
    README describes the restore."""

    enabled: bool = Field(default=False, description="Run scheduled backups.")
    weaviate: bool = Field(default=True, description="Back up Weaviate (its backup API).")
    redis: bool = Field(
        default=True,
        description="Back up the app Redis (cached job status, tags) and the state Redis (job "
        "records, queued uploads) as RDB snapshots; the ML Redis is a cache and is not backed "
        "up.",
    )
    schedule: Cron = Field(
        default="30 2 * * *", description="When backups run (cron, the controller's time zone)."
    )
    retention: int = Field(
        default=7,
        ge=1,
        le=1000,
        description="Backups kept per component; older ones (only those the backup job named) "
        "are deleted after each successful backup.",
    )
    target: BackupTarget | None = Field(
        default=None, description="Where backups go; required when enabled."
    )

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel("!self.enabled || has(self.target)", "backup.target is required when enabled")
        )
    )

    @model_validator(mode="after")
    def _target_when_enabled(self) -> BackupSpec:
        if self.enabled and self.target is None:
            raise ValueError("backup.target is required when enabled")
        return self
