"""Spec of the service level objectives (the platform plan's success metrics).

Each objective is the share of good requests over a rolling window: not a 5xx
(availability) and faster than a fixed latency threshold (latency). The thresholds are fixed
because they must be bucket boundaries of the histograms the SLIs count: 0.2 s in the
services' `http_request_duration_seconds`, 50 ms in Kong's `kong_request_latency_ms`.
"""

from __future__ import annotations

from pydantic import Field

from .spec_common import SpecModel


def _percent(default: float, what: str) -> float:
    return Field(default=default, gt=0, lt=100, description=f"Objective: % of requests {what}.")


class ServiceObjectives(SpecModel):
    """Objectives of the Python services (api, ml, excel), each counted per service."""

    availability_percent: float = _percent(99.9, "answered without a 5xx status")
    latency_percent: float = _percent(95, "answered within 200 ms (p95 < 200 ms at 95)")


class GatewayObjectives(SpecModel):
    """Objectives of the Kong gateway, from its prometheus plugin's series."""

    availability_percent: float = _percent(99.9, "answered without a 5xx status")
    latency_percent: float = _percent(95, "answered within 50 ms (p95 < 50 ms at 95)")


class SloSpec(SpecModel):
    """SLO recording rules, multi-window multi-burn-rate alerts and the SLO dashboard."""

    enabled: bool = Field(
        default=True,
        description="Record the SLIs (error ratios over 5m..3d) and, when alerts are enabled, "
        "alert on fast (page) and slow (ticket) error budget burn.",
    )
    services: ServiceObjectives = Field(
        default=ServiceObjectives(), description="Objectives of the api, ml and excel services."
    )
    gateway: GatewayObjectives = Field(
        default=GatewayObjectives(), description="Objectives of the gateway (when enabled)."
    )
