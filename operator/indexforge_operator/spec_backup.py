"""Spec of scheduled backups: when, how many are kept, and where they are written.

Each component that can be backed up gets its own CronJob (today Prometheus's TSDB snapshot
and Grafana's database; Weaviate and Redis are meant to join as more entries of the same
schedule/retention/target). The target is a volume today; an object store would be a sibling
of `target.volume`.
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


class BackupTarget(SpecModel):
    """Where backups are written."""

    volume: BackupVolume = Field(description="A PersistentVolumeClaim.")


class BackupSpec(SpecModel):
    """Scheduled backups of Prometheus (TSDB snapshot) and Grafana (grafana.db), for the
    components this instance deploys. The README describes the restore."""

    enabled: bool = Field(default=False, description="Run scheduled backups.")
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
