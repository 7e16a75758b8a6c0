"""Building blocks of the IndexForge spec: base model, bounded string types, shared parts.

Every constraint here ends up twice: enforced by pydantic (`indexforge render`, the operator)
and by the API server through the generated CRD schema. Hence bounds on every string, list
and map: the API server's CEL cost estimator rejects rules over unbounded values.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.alias_generators import to_camel

from .spec_checks import (
    QUALIFIED_NAME_MAX,
    QUALIFIED_NAME_MESSAGE,
    REQUESTS_WITHIN_LIMITS_MESSAGE,
    REQUESTS_WITHIN_LIMITS_MESSAGE_EXPRESSION,
    REQUESTS_WITHIN_LIMITS_RULE,
    check_qualified_name,
    qualified_name_rule,
    requests_over_limits,
)


def cel(rule: str, message: str, *, reason: str | None = None) -> dict[str, str]:
    """One `x-kubernetes-validations` entry (a CEL rule with the message users see)."""
    entry = {"rule": rule, "message": message}
    if reason is not None:
        entry["reason"] = reason
    return entry


def cel_with_message_expression(rule: str, message: str, expression: str) -> dict[str, str]:
    """A CEL rule whose message is computed (naming the offending key); `message` is the
    fallback the API server shows if the expression fails."""
    return {"rule": rule, "message": message, "messageExpression": expression}


def rules(*entries: dict[str, str]) -> dict[str, Any]:
    """`json_schema_extra` carrying CEL rules into the generated CRD schema."""
    return {"x-kubernetes-validations": list(entries)}


# Kubernetes quantity, the common forms only ("500m", "1.5", "768Mi", "2Gi").
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# registry/path[:tag][@sha256:digest]; loose on purpose, the runtime validates the rest.
IMAGE_PATTERN = (
    r"^[a-z0-9][a-z0-9._/:-]{0,254}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)
LABEL_VALUE_PATTERN = r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$"

Quantity = Annotated[str, StringConstraints(max_length=32, pattern=QUANTITY_PATTERN)]
# A CRD cannot give map keys a schema, so the key's CEL rule travels to the map (see
# openapi._key_rules). Plain string fields (toleration keys) use the same rule on `self`, not a
# pattern, so that pydantic, CEL and the static chart all report one message.
QualifiedNameKey = Annotated[
    str,
    StringConstraints(max_length=QUALIFIED_NAME_MAX),
    AfterValidator(check_qualified_name),
    Field(
        json_schema_extra={
            "x-indexforge-key-rule": cel(
                qualified_name_rule("k"), f"every key {QUALIFIED_NAME_MESSAGE}"
            )
        }
    ),
]
QualifiedName = Annotated[
    str,
    StringConstraints(max_length=QUALIFIED_NAME_MAX),
    AfterValidator(check_qualified_name),
    Field(json_schema_extra=rules(cel(qualified_name_rule("self"), QUALIFIED_NAME_MESSAGE))),
]
ResourceKey = QualifiedNameKey
LabelKey = QualifiedNameKey
LabelValue = Annotated[str, StringConstraints(max_length=63, pattern=LABEL_VALUE_PATTERN)]
DnsLabel = Annotated[str, StringConstraints(max_length=63, pattern=DNS_LABEL_PATTERN)]
DnsSubdomain = Annotated[str, StringConstraints(max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
Image = Annotated[str, StringConstraints(max_length=512, pattern=IMAGE_PATTERN)]
LabelMap = dict[LabelKey, LabelValue]
PullPolicy = Literal["Always", "IfNotPresent", "Never"]


class SpecModel(BaseModel):
    """Base of every spec part: camelCase keys, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        frozen=True,
        # Only the YAML (camelCase) names are accepted, exactly like the API server.
        validate_by_alias=True,
        validate_by_name=False,
    )


def image_field(default: str, what: str) -> Any:
    return Field(default=default, description=f"Container image of {what} (registry/name:tag).")


def pull_policy_field() -> Any:
    return Field(default="IfNotPresent", description="Image pull policy of the containers.")


def replicas_field(default: int, what: str, *, maximum: int = 50) -> Any:
    return Field(default=default, ge=1, le=maximum, description=f"Number of {what} pods.")


class Resources(SpecModel):
    """Compute resources of a container (same shape as a Pod's `resources`)."""

    requests: dict[ResourceKey, Quantity] = Field(
        default_factory=dict,
        max_length=8,
        description="Minimum resources the scheduler reserves, e.g. {cpu: 250m, memory: 256Mi}.",
    )
    limits: dict[ResourceKey, Quantity] = Field(
        default_factory=dict,
        max_length=8,
        description="Maximum resources the container may use, e.g. {cpu: '1', memory: 512Mi}.",
    )

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel_with_message_expression(
                REQUESTS_WITHIN_LIMITS_RULE,
                REQUESTS_WITHIN_LIMITS_MESSAGE,
                REQUESTS_WITHIN_LIMITS_MESSAGE_EXPRESSION,
            )
        )
    )

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Resources:
        problem = requests_over_limits(self.requests, self.limits)
        if problem is not None:
            raise ValueError(problem)
        return self


def resources_field(
    *, cpu_request: str, memory_request: str, cpu_limit: str, memory_limit: str, what: str
) -> Any:
    default = Resources.model_validate(
        {
            "requests": {"cpu": cpu_request, "memory": memory_request},
            "limits": {"cpu": cpu_limit, "memory": memory_limit},
        }
    )
    return Field(default=default, description=f"CPU/memory requests and limits of {what}.")


class Toleration(SpecModel):
    """A Pod toleration (lets pods schedule onto tainted nodes)."""

    key: QualifiedName | None = Field(
        default=None, description="Taint key; empty with Exists matches all."
    )
    operator: Literal["Exists", "Equal"] = Field(
        default="Equal", description="How key/value match."
    )
    value: LabelValue | None = Field(default=None, description="Taint value (operator Equal only).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to tolerate; empty tolerates every effect."
    )
    toleration_seconds: int | None = Field(
        default=None, ge=0, le=86400 * 7, description="How long a NoExecute taint is tolerated."
    )

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel(
                "self.operator != 'Exists' || !has(self.value)",
                "a toleration with operator Exists must not set value",
            )
        )
    )

    @model_validator(mode="after")
    def _exists_has_no_value(self) -> Toleration:
        if self.operator == "Exists" and self.value is not None:
            raise ValueError("a toleration with operator Exists must not set value")
        return self


class Autoscaling(SpecModel):
    """HorizontalPodAutoscaler on average CPU utilisation."""

    enabled: bool = Field(
        default=True, description="Create an HPA; the replicas field is then unused."
    )
    min_replicas: int = Field(default=2, ge=1, le=100, description="Lower bound of replicas.")
    max_replicas: int = Field(default=10, ge=1, le=100, description="Upper bound of replicas.")
    target_cpu_utilization_percentage: int = Field(
        default=70, ge=1, le=100, description="Average CPU utilisation (% of requests) to aim for."
    )

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel(
                "self.minReplicas <= self.maxReplicas",
                "autoscaling.minReplicas must be less than or equal to maxReplicas",
            )
        )
    )

    @model_validator(mode="after")
    def _min_le_max(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError("autoscaling.minReplicas must be less than or equal to maxReplicas")
        return self


class DisruptionBudget(SpecModel):
    """PodDisruptionBudget of a multi-replica component."""

    enabled: bool = Field(
        default=True, description="Create a PDB when the component has >1 replica."
    )
    max_unavailable: int = Field(
        default=1,
        ge=1,
        le=100,
        description="Pods that may be down at once during voluntary disruption.",
    )


# Volumes can grow (the operator patches the PVCs, see volumes.py) but never shrink: no
# StorageClass can shrink a volume. A transition rule, since pydantic never sees the old spec.
GROW_ONLY_RULE = "quantity(self).compareTo(quantity(oldSelf)) >= 0"


def grow_only(what: str) -> dict[str, Any]:
    return rules(cel(GROW_ONLY_RULE, f"{what} cannot shrink (volumes can only grow)"))


class Persistence(SpecModel):
    """PersistentVolumeClaim template of a StatefulSet: the size may grow, nothing else
    changes after creation."""

    enabled: bool = Field(
        default=True, description="Keep data on a PVC; emptyDir (lost on restart) if off."
    )
    size: Quantity = Field(
        default="8Gi",
        description="Requested volume size. May grow (the operator expands the PVCs when "
        "their StorageClass allows it), never shrink.",
        json_schema_extra=grow_only("persistence.size"),
    )
    storage_class_name: DnsSubdomain | None = Field(
        default=None,
        description="StorageClass of the PVC; the cluster default when empty. Immutable.",
        json_schema_extra=rules(cel("self == oldSelf", "storageClassName is immutable")),
    )

    model_config = ConfigDict(
        json_schema_extra=rules(
            # The rest of the claim template cannot change: reject what would fail later.
            cel("self.enabled == oldSelf.enabled", "persistence.enabled is immutable"),
            cel(
                "has(self.storageClassName) == has(oldSelf.storageClassName)",
                "storageClassName is immutable (it cannot be added or removed)",
            ),
        )
    )


def persistence_field(size: str, what: str) -> Any:
    default = Persistence.model_validate({"size": size})
    return Field(default=default, description=f"Persistent storage of {what}.")


class SecretKeyRef(SpecModel):
    """Reference to one key of a Secret in the CR's namespace."""

    name: DnsSubdomain = Field(description="Name of the Secret.")
    key: Annotated[str, StringConstraints(max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")] = Field(
        default="dsn", description="Key inside the Secret's data."
    )


def disruption_field() -> Any:
    return Field(default=DisruptionBudget(), description="PodDisruptionBudget settings.")


SpreadPolicy = Literal["DoNotSchedule", "ScheduleAnyway"]


class TopologySpread(SpecModel):
    """How replicas of one component spread over nodes and zones (every workload's pods)."""

    node: SpreadPolicy = Field(
        default="DoNotSchedule",
        description="Replicas on different nodes: DoNotSchedule keeps two replicas off one "
        "node while another eligible node exists (the loss of a node takes at most the skew); "
        "ScheduleAnyway only prefers it.",
    )
    zone: SpreadPolicy = Field(
        default="ScheduleAnyway",
        description="Replicas over topology.kubernetes.io/zone (preferred by default: many "
        "clusters have one zone or unlabelled nodes).",
    )
