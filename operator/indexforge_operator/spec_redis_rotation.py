"""Redis password rotation settings (operator only: the static chart never rotates)."""

from __future__ import annotations

from pydantic import Field

from .spec_common import SpecModel


class RedisPasswordRotation(SpecModel):
    """Rotation of the Redis passwords with overlap, live (redis_rotation.py). Asked for by
    the annotation `indexforge.io/rotate-redis: <all|redis-app,redis-ml,redis-state>[:<id>]`
    or due every `intervalHours`. Each Redis first accepts old and new (its ACL sync sidecar
    applies the mounted list), then clients get the new one, and the old one is refused after
    `gracePeriodSeconds`. No Redis restarts; Kong rolls once (its kong.yml carries the app
    Redis password)."""

    interval_hours: int = Field(
        default=0,
        ge=0,
        le=8760,
        description="Rotate every Redis password this often (hours); 0: only on request.",
    )
    propagation_seconds: int = Field(
        default=150,
        ge=10,
        le=3600,
        description="How long a changed Secret takes to reach the Redis pods' mounted files "
        "(the kubelet's sync period plus its cache TTL) and the sidecar to apply it: clients "
        "get the new password only after this (the operator cannot read the pods' files).",
    )
    grace_period_seconds: int = Field(
        default=600,
        ge=10,
        le=2_592_000,
        description="How long the old password stays accepted after clients were given the "
        "new one: mounted files lag by up to the kubelet's sync period, and Kong rolls.",
    )
