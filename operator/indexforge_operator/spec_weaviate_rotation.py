"""Weaviate API-key rotation settings (operator only: the static chart never rotates)."""

from __future__ import annotations

from pydantic import Field

from .spec_common import SpecModel


class WeaviateKeyRotation(SpecModel):
    """Rotation of the Weaviate API key with overlap (weaviate_rotation.py). Asked for by the
    annotation `indexforge.io/rotate-weaviate-key: <request id>` or due every
    `intervalHours`. Weaviate reads its accepted keys at start only, so each rotation rolls
    its pods twice, one at a time (the StatefulSet controller waits for each to be Ready):
    first to accept old and new, then, `gracePeriodSeconds` after clients got the new key, to
    drop the old one. Without a quorum of every object on the other pods (replicationFactor
    below 3) each restart is an outage: refused unless `allowRestartOutage`."""

    interval_hours: int = Field(
        default=0,
        ge=0,
        le=8760,
        description="Rotate the Weaviate API key this often (hours); 0: only on request.",
    )
    grace_period_seconds: int = Field(
        default=600,
        ge=10,
        le=2_592_000,
        description="How long the old key stays accepted after clients were given the new one: "
        "mounted files lag by up to the kubelet's sync period (about a minute).",
    )
    rollout_timeout_seconds: int = Field(
        default=1800,
        ge=60,
        le=86400,
        description="How long Weaviate may take to restart every pod with the new key list "
        "before the rotation is reported stuck (it then waits; clients keep the old key).",
    )
    allow_restart_outage: bool = Field(
        default=False,
        description="Rotate even when a Weaviate pod's restart makes objects unavailable "
        "(effective replicationFactor below 3, e.g. one replica): a short outage per restart.",
    )
