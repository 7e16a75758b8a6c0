"""Shape of `IndexForge.status` (written by the reconciler, schema generated into the CRD)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from .spec_common import SpecModel

Phase = Literal["Pending", "Progressing", "Ready", "Degraded", "Paused", "Failed"]
MonitoringMode = Literal["PrometheusOperator", "Standalone", "Disabled"]
Timestamp = Annotated[
    str, StringConstraints(max_length=64), Field(json_schema_extra={"format": "date-time"})
]


class Condition(SpecModel):
    """A metav1.Condition-style status condition."""

    type: Annotated[str, StringConstraints(max_length=316, pattern=r"^[A-Z][A-Za-z0-9]*$")] = Field(
        description="Condition type, e.g. Ready, Progressing, Degraded, MLAvailable."
    )
    status: Literal["True", "False", "Unknown"] = Field(description="Condition status.")
    reason: Annotated[
        str, StringConstraints(max_length=1024, pattern=r"^([A-Z][A-Za-z0-9]*)?$")
    ] = Field(default="", description="CamelCase reason for the last transition.")
    message: Annotated[str, StringConstraints(max_length=32768)] = Field(
        default="", description="Human-readable detail."
    )
    last_transition_time: Timestamp | None = Field(
        default=None, description="When the status last flipped (unchanged otherwise)."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the condition was computed from."
    )


class ComponentStatus(SpecModel):
    """Replica counts of one component."""

    ready: int = Field(default=0, ge=0, description="Ready replicas.")
    desired: int = Field(default=0, ge=0, description="Desired replicas.")


class RequestStatus(SpecModel):
    """An on-demand backup or restore asked for by annotation (on_demand.py)."""

    request: Annotated[str, StringConstraints(max_length=253)] = Field(
        description="The annotation value handled: the same value never runs twice."
    )
    jobs: list[Annotated[str, StringConstraints(max_length=63)]] = Field(
        default_factory=list, max_length=8, description="Jobs started for it."
    )
    result: Literal["Running", "Succeeded", "Failed", "Refused"] = Field(
        description="Running until every Job finished; Refused: nothing was started."
    )
    message: Annotated[str, StringConstraints(max_length=4096)] = Field(
        default="", description="Why it failed or was refused."
    )
    step: Literal["Stopping", "Restoring", "Starting"] | None = Field(
        default=None,
        description="A running Redis restore's step: its Redis stopping, the restore Job "
        "running, its Redis starting again.",
    )
    started_at: Timestamp | None = Field(
        default=None, description="When a Redis restore started (its overall timeout)."
    )
    job_result: Literal["Succeeded", "Failed"] | None = Field(
        default=None, description="How a Redis restore's Job ended, while Redis starts."
    )


class KeyRotationStatus(SpecModel):
    """Gateway consumer-key rotation (rotation.py); never carries a key."""

    phase: Literal["Idle", "Issued", "Published"] = Field(
        description="Idle; Issued: Kong rolls out old+new key, clients still get the old; "
        "Published: clients get the new key, the old one is valid until retireAfter."
    )
    request: Annotated[str, StringConstraints(max_length=253)] = Field(
        default="",
        description="The running (or last) rotation: the annotation value or schedule@<time>.",
    )
    consumers: list[Annotated[str, StringConstraints(max_length=63)]] = Field(
        default_factory=list, max_length=32, description="Consumers whose key rotates."
    )
    started_at: Timestamp | None = Field(default=None, description="When the new key was issued.")
    published_at: Timestamp | None = Field(
        default=None, description="When the consumers Secret got the new key."
    )
    retire_after: Timestamp | None = Field(
        default=None, description="When the old key leaves the gateway."
    )
    completed_at: Timestamp | None = Field(
        default=None, description="When the last rotation retired its old key."
    )
    queued: Annotated[str, StringConstraints(max_length=253)] | None = Field(
        default=None, description="A request that waits for the running rotation."
    )
    refused: Annotated[str, StringConstraints(max_length=253)] | None = Field(
        default=None, description="The last request refused (nothing changed)."
    )
    message: Annotated[str, StringConstraints(max_length=4096)] = Field(
        default="", description="Why the last request was refused."
    )
    stuck: bool | None = Field(
        default=None, description="The gateway's rollout exceeded rolloutTimeoutSeconds."
    )


class RedisPasswordRotationStatus(SpecModel):
    """Redis password rotation (redis_rotation.py); never carries a password."""

    phase: Literal["Idle", "Issued", "Published"] = Field(
        description="Idle; Issued: the Redis pods apply old+new, clients still use the old; "
        "Published: clients get the new password, the old one is accepted until retireAfter."
    )
    request: Annotated[str, StringConstraints(max_length=253)] = Field(
        default="",
        description="The running (or last) rotation: the annotation value or schedule@<time>.",
    )
    instances: list[Annotated[str, StringConstraints(max_length=63)]] = Field(
        default_factory=list, max_length=3, description="Redis instances whose password rotates."
    )
    started_at: Timestamp | None = Field(
        default=None, description="When the new password was issued."
    )
    publish_after: Timestamp | None = Field(
        default=None, description="When clients get the new password at the earliest."
    )
    published_at: Timestamp | None = Field(
        default=None, description="When clients were given the new password."
    )
    retire_after: Timestamp | None = Field(
        default=None, description="When the old password is refused at the earliest."
    )
    completed_at: Timestamp | None = Field(
        default=None, description="When the last rotation retired its old password."
    )
    queued: Annotated[str, StringConstraints(max_length=253)] | None = Field(
        default=None, description="A request that waits for the running rotation."
    )
    refused: Annotated[str, StringConstraints(max_length=253)] | None = Field(
        default=None, description="The last request refused (nothing changed)."
    )
    message: Annotated[str, StringConstraints(max_length=4096)] = Field(
        default="", description="Why the last request was refused, or what waits."
    )


class WeaviateKeyRotationStatus(SpecModel):
    """Weaviate API-key rotation (weaviate_rotation.py); never carries a key."""

    phase: Literal["Idle", "Issued", "Published"] = Field(
        description="Idle; Issued: Weaviate's pods restart one at a time to accept old+new, "
        "clients still use the old key; Published: clients get the new key, the old one is "
        "accepted until retireAfter (then Weaviate restarts without it)."
    )
    request: Annotated[str, StringConstraints(max_length=253)] = Field(
        default="",
        description="The running (or last) rotation: the annotation value or schedule@<time>.",
    )
    started_at: Timestamp | None = Field(default=None, description="When the new key was issued.")
    published_at: Timestamp | None = Field(
        default=None, description="When clients were given the new key."
    )
    retire_after: Timestamp | None = Field(
        default=None, description="When Weaviate restarts without the old key at the earliest."
    )
    completed_at: Timestamp | None = Field(
        default=None, description="When the last rotation retired its old key."
    )
    queued: Annotated[str, StringConstraints(max_length=253)] | None = Field(
        default=None, description="A request that waits for the running rotation."
    )
    refused: Annotated[str, StringConstraints(max_length=253)] | None = Field(
        default=None, description="The last request refused (nothing changed)."
    )
    message: Annotated[str, StringConstraints(max_length=4096)] = Field(
        default="", description="Why the last request was refused, or what waits."
    )
    stuck: bool | None = Field(
        default=None, description="Weaviate's rolling restart exceeded rolloutTimeoutSeconds."
    )


class IndexForgeStatus(SpecModel):
    """Observed state of an IndexForge."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation last reconciled."
    )
    phase: Phase | None = Field(default=None, description="Summary of the conditions.")
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=32,
        description="Ready, Progressing, Degraded and one <Component>Available per component.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    components: dict[Annotated[str, StringConstraints(max_length=32)], ComponentStatus] = Field(
        default_factory=dict, max_length=16, description="Replicas per component."
    )
    endpoint: Annotated[str, StringConstraints(max_length=2048)] | None = Field(
        default=None, description="Where clients reach the API (the gateway when enabled)."
    )
    gpus: int | None = Field(
        default=None, ge=0, description="GPUs requested by the ML pods in total."
    )
    mode: MonitoringMode | None = Field(
        default=None, description="Which monitoring mode is active."
    )
    backup_request: RequestStatus | None = Field(
        default=None, description="The last indexforge.io/backup-now request."
    )
    restore_request: RequestStatus | None = Field(
        default=None, description="The last indexforge.io/restore request."
    )
    key_rotation: KeyRotationStatus | None = Field(
        default=None, description="Gateway consumer-key rotation."
    )
    redis_password_rotation: RedisPasswordRotationStatus | None = Field(
        default=None, description="Redis password rotation."
    )
    weaviate_key_rotation: WeaviateKeyRotationStatus | None = Field(
        default=None, description="Weaviate API-key rotation."
    )
