"""Spec of the service mesh mode: which mesh (if any) carries the instance's traffic."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from .spec_common import SpecModel

MeshMode = Literal["auto", "none", "istio"]
# A SPIFFE trust domain: DNS-like, as Istio's meshConfig.trustDomain.
TrustDomain = Annotated[
    str,
    StringConstraints(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
]


class MeshSpec(SpecModel):
    """Istio mode: sidecars on the pods, mTLS required between them, and AuthorizationPolicies
    that allow exactly the NetworkPolicies' flows, by ServiceAccount identity."""

    mode: MeshMode = Field(
        default="auto",
        description="none: no mesh objects or sidecar labels; istio: sidecar injection labels, "
        "PeerAuthentication STRICT, DestinationRules with ISTIO_MUTUAL and AuthorizationPolicies "
        "(needs Istio's CRDs); auto: istio when the peerauthentications.security.istio.io CRD "
        "exists.",
    )
    trust_domain: TrustDomain = Field(
        default="cluster.local",
        description="Istio's trust domain (meshConfig.trustDomain): the first part of the "
        "ServiceAccount principals the AuthorizationPolicies allow.",
    )
