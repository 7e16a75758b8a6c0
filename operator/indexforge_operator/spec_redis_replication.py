"""Spec of the state Redis's replication: a primary, replicas and Redis Sentinels.

Only the state Redis has it (`redis.state.replication`). The app and ML Redis are caches:
losing one costs recomputation, and a replicated cache would double its memory for data
that may be dropped anyway. The state Redis holds job records and queued uploads, which a
lost primary would lose for good.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field, model_validator

from .spec_common import (
    DisruptionBudget,
    Resources,
    SpecModel,
    cel,
    disruption_field,
    resources_field,
    rules,
)

SENTINELS_ODD_MESSAGE = "redis.state.replication.sentinels must be odd"
QUORUM_MESSAGE = "redis.state.replication.quorum must be at most sentinels"
WAIT_REPLICAS_MESSAGE = "redis.state.replication.waitReplicas must be less than replicas"
# The name the sentinels know the primary by (the services' INDEXFORGE_STATE_REDIS_MASTER).
MASTER_NAME = "indexforge-state"


class RedisReplication(SpecModel):
    """Replicas of the state Redis, watched by Redis Sentinel, which promotes a replica
    when the primary is lost; the services ask the sentinels where the primary is."""

    enabled: bool = Field(
        default=False, description="Run replicas and Sentinels (one Redis pod when off)."
    )
    replicas: int = Field(
        default=3,
        ge=2,
        le=9,
        description="Redis pods in total: one primary, the rest replicas of it.",
    )
    sentinels: int = Field(
        default=3,
        ge=3,
        le=7,
        description="Sentinel pods. A failover needs a majority of them, so odd numbers "
        "only: 3 survive the loss of one.",
        json_schema_extra=rules(cel("self % 2 == 1", SENTINELS_ODD_MESSAGE)),
    )
    quorum: int | None = Field(
        default=None,
        ge=1,
        le=7,
        description="Sentinels that must agree the primary is down before a failover "
        "starts (the failover itself always needs a majority). Unset: a majority.",
    )
    wait_replicas: int = Field(
        default=1,
        ge=0,
        le=8,
        description="Replicas each job record write waits for (Redis WAIT): a confirmed "
        "record survives a failover. At most replicas - 1; 0: no wait.",
    )
    sentinel_resources: Resources = resources_field(
        cpu_request="20m",
        memory_request="32Mi",
        cpu_limit="200m",
        memory_limit="64Mi",
        what="each Sentinel",
    )
    pod_disruption_budget: DisruptionBudget = disruption_field()

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel("!has(self.quorum) || self.quorum <= self.sentinels", QUORUM_MESSAGE),
            cel("self.waitReplicas < self.replicas", WAIT_REPLICAS_MESSAGE),
        )
    )

    @model_validator(mode="after")
    def _check(self) -> RedisReplication:
        if self.sentinels % 2 == 0:
            raise ValueError(SENTINELS_ODD_MESSAGE)
        if self.quorum is not None and self.quorum > self.sentinels:
            raise ValueError(QUORUM_MESSAGE)
        if self.wait_replicas >= self.replicas:
            raise ValueError(WAIT_REPLICAS_MESSAGE)
        return self

    @property
    def effective_quorum(self) -> int:
        return self.quorum if self.quorum is not None else self.sentinels // 2 + 1
