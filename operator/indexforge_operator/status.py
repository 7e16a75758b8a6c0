"""From live workloads to the CR's status: components, conditions and phase. Pure functions.

Decisions return (reason, message) pairs in the cert-manager style, so each one is testable
without a cluster and every user-facing word lives here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from indexforge_operator.conditions import Condition
from indexforge_operator.naming import LABEL_COMPONENT

Obj = dict[str, Any]

# A component stopped by a restore of its data (on_demand.py): progress, not a fault.
RESTORING = "Restoring"
# Condition type per component; the CR's printer columns and docs name these.
COMPONENT_CONDITIONS: dict[str, str] = {
    "api": "APIAvailable",
    "ml": "MLAvailable",
    "excel": "ExcelAvailable",
    "redis-app": "RedisAppAvailable",
    "redis-ml": "RedisMLAvailable",
    "redis-state": "RedisStateAvailable",
    "sentinel": "RedisSentinelAvailable",
    "weaviate": "WeaviateAvailable",
    "gateway": "GatewayAvailable",
    "prometheus": "PrometheusAvailable",
    "alertmanager": "AlertmanagerAvailable",
    "grafana": "GrafanaAvailable",
    "jaeger": "JaegerAvailable",
    "rabbitmq": "RabbitMQAvailable",
    "worker": "WorkersAvailable",
}


@dataclass(frozen=True)
class WorkloadState:
    component: str
    kind: str
    name: str
    desired: int
    ready: int
    exists: bool

    @property
    def available(self) -> bool:
        return self.exists and self.ready >= self.desired


def autoscaled_minimums(desired: list[Obj]) -> dict[str, int]:
    """Workload name -> floor of its HPA (or KEDA ScaledObject, which may scale to zero): an
    autoscaled workload is available only at its floor."""
    floors = {
        "HorizontalPodAutoscaler": ("minReplicas", 1),
        "ScaledObject": ("minReplicaCount", 0),
    }
    return {
        obj["spec"]["scaleTargetRef"]["name"]: int(obj["spec"].get(*floors[obj["kind"]]))
        for obj in desired
        if obj["kind"] in floors
    }


def workload_state(desired: Obj, live: Obj | None, *, minimum: int = 0) -> WorkloadState:
    """Readiness of one Deployment/StatefulSet, judged from its live status.

    ``minimum`` is the HPA floor: right after creation the Deployment has 1 replica until the
    HPA scales it up, and calling that Ready would flap Ready when the scale-up happens.
    """
    component = desired["metadata"].get("labels", {}).get(LABEL_COMPONENT, "unknown")
    want = max(int(desired.get("spec", {}).get("replicas", 1)), minimum)
    if live is None:
        return WorkloadState(
            component, desired["kind"], desired["metadata"]["name"], want, 0, False
        )
    status = live.get("status", {})
    # A rollout is done only when the controller has seen the newest spec.
    current = status.get("observedGeneration", 0) >= live["metadata"].get("generation", 0)
    ready = int(status.get("readyReplicas", 0) or 0) if current else 0
    if live["kind"] == "Deployment" and current:
        ready = min(ready, int(status.get("updatedReplicas", 0) or 0))
    replicas = max(int(live.get("spec", {}).get("replicas", want)), minimum)
    return WorkloadState(component, live["kind"], live["metadata"]["name"], replicas, ready, True)


def replica_counts(states: list[WorkloadState]) -> dict[str, dict[str, int]]:
    """status.components: ready/desired replicas summed per component."""
    out: dict[str, dict[str, int]] = {}
    for state in states:
        entry = out.setdefault(state.component, {"ready": 0, "desired": 0})
        entry["ready"] += state.ready
        entry["desired"] += state.desired
    return out


def scheduling_messages(pods: list[Obj], events: list[Obj]) -> list[str]:
    """FailedScheduling messages of the given pods that are still Pending, newest first."""
    pending = {p["metadata"]["name"] for p in pods if p.get("status", {}).get("phase") == "Pending"}
    relevant = [
        e
        for e in events
        if e.get("reason") == "FailedScheduling"
        and e.get("involvedObject", {}).get("name") in pending
    ]
    relevant.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "", reverse=True)
    return [str(e.get("message", "")) for e in relevant]


def component_conditions(
    states: list[WorkloadState], problems: dict[str, tuple[str, str]]
) -> list[Condition]:
    """One ``<Component>Available`` condition per component that has workloads."""
    by_component: dict[str, list[WorkloadState]] = {}
    for state in states:
        by_component.setdefault(state.component, []).append(state)
    conditions = []
    for component, items in by_component.items():
        ctype = COMPONENT_CONDITIONS.get(
            component, f"{component.title().replace('-', '')}Available"
        )
        ready = sum(s.ready for s in items)
        desired = sum(s.desired for s in items)
        if component in problems:
            reason, message = problems[component]
            conditions.append(Condition(ctype, "False", reason, message))
        elif all(s.available for s in items):
            conditions.append(
                Condition(ctype, "True", "MinimumReplicasAvailable", f"{ready}/{desired} ready")
            )
        else:
            missing = [s.name for s in items if not s.exists]
            message = f"{ready}/{desired} ready" + (
                f"; not created yet: {missing}" if missing else ""
            )
            conditions.append(Condition(ctype, "False", "ReplicasNotReady", message))
    return conditions


@dataclass(frozen=True)
class Summary:
    phase: str
    conditions: list[Condition]


def summarize(
    components: list[Condition],
    *,
    paused: bool,
    errors: list[tuple[str, str]],
    monitoring: tuple[str, str, bool],
) -> Summary:
    """Top-level Ready/Progressing/Degraded plus the monitoring mode, and the phase.

    ``monitoring`` is (reason, message, whether metrics are collected at all).
    """
    not_ready = [c for c in components if c.status != "True"]
    blocked = [c for c in not_ready if c.reason not in ("ReplicasNotReady", RESTORING)]
    degraded_reasons = errors + [(c.reason, f"{c.type}: {c.message}") for c in blocked]

    if paused:
        progressing = Condition(
            "Progressing", "False", "Paused", "reconciliation is paused; no writes"
        )
    elif not_ready and not blocked:
        names = ", ".join(c.type for c in not_ready)
        progressing = Condition("Progressing", "True", "RollingOut", f"waiting for {names}")
    else:
        progressing = Condition(
            "Progressing", "False", "ReconcileComplete", "desired state applied"
        )

    if degraded_reasons:
        reason, _ = degraded_reasons[0]
        degraded = Condition(
            "Degraded", "True", reason, "; ".join(message for _, message in degraded_reasons)
        )
    else:
        degraded = Condition("Degraded", "False", "AsExpected", "no problems detected")

    if not_ready or errors:
        # A problem users must fix says more than "replicas not ready", which it often causes.
        first = errors[0] if errors else (not_ready[0].reason, not_ready[0].message)
        ready = Condition("Ready", "False", first[0], first[1])
    else:
        ready = Condition("Ready", "True", "AllComponentsAvailable", "every component is available")

    mode_reason, mode_message, collecting = monitoring
    mode = Condition("Monitoring", "True" if collecting else "False", mode_reason, mode_message)

    if paused:
        phase = "Paused"
    elif degraded.status == "True":
        phase = "Degraded"
    elif ready.status == "True":
        phase = "Ready"
    else:
        phase = "Progressing"
    return Summary(phase, [ready, progressing, degraded, mode, *components])


# Only these transitions are news worth an Event; the rest is visible in the conditions.
_HEADLINE_TYPES = ("Ready", "Degraded")


def transition_events(
    flipped: list[Obj], *, first_pass: bool = False
) -> list[tuple[str, str, str]]:
    """(type, reason, message) Events for condition flips users should hear about.

    Ready and Degraded always; a component only when it fails for a reason other than
    still starting up (e.g. InsufficientGPU), or recovers from such a failure.
    """
    events = []
    for cond in flipped:
        is_component = cond["type"].endswith("Available")
        if not is_component and cond["type"] not in _HEADLINE_TYPES:
            continue
        if is_component and cond["reason"] in (
            "ReplicasNotReady",
            "MinimumReplicasAvailable",
            RESTORING,  # the restore posts Events of its own
        ):
            continue
        bad = (cond["status"] == "True") == (cond["type"] == "Degraded")
        if first_pass and bad and cond["reason"] == "ReplicasNotReady":
            continue  # "not ready yet" right after creation is not news
        if first_pass and not bad and cond["type"] == "Degraded":
            continue  # nor is "not degraded" before anything happened
        events.append(
            (
                "Warning" if bad else "Normal",
                cond["reason"],
                f"{cond['type']}={cond['status']}: {cond['message']}",
            )
        )
    return events
