"""Status decisions: conditions keep their transition time, phases, GPU shortage, ownership."""

from __future__ import annotations

from typing import Any

import pytest

from indexforge_operator import ownership, status
from indexforge_operator.conditions import Condition, flips, merge_conditions


def test_transition_time_moves_only_when_status_flips() -> None:
    first = merge_conditions([], [Condition("Ready", "False", "A", "a")], now="t1", generation=1)
    same = merge_conditions(first, [Condition("Ready", "False", "B", "b")], now="t2", generation=2)
    flipped = merge_conditions(same, [Condition("Ready", "True", "C", "c")], now="t3", generation=2)
    assert first[0]["lastTransitionTime"] == "t1"
    assert same[0]["lastTransitionTime"] == "t1"  # reason/message changed, status did not
    assert same[0]["reason"] == "B" and same[0]["observedGeneration"] == 2
    assert flipped[0]["lastTransitionTime"] == "t3"
    assert [c["type"] for c in flips(same, flipped)] == ["Ready"]
    assert flips(first, same) == []


def _workload(kind: str, component: str, replicas: int, **status_fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {
            "name": f"x-{component}",
            "generation": 2,
            "labels": {"app.kubernetes.io/component": component},
        },
        "spec": {"replicas": replicas},
        "status": {"observedGeneration": 2, **status_fields},
    }


@pytest.mark.parametrize(
    ("kind", "fields", "ready", "available"),
    [
        ("Deployment", {"readyReplicas": 2, "updatedReplicas": 2}, 2, True),
        ("Deployment", {"readyReplicas": 2, "updatedReplicas": 1}, 1, False),  # mid-rollout
        ("Deployment", {}, 0, False),
        ("StatefulSet", {"readyReplicas": 2}, 2, True),
    ],
)
def test_workload_state_counts_ready_and_updated(
    kind: str, fields: dict[str, Any], ready: int, available: bool
) -> None:
    obj = _workload(kind, "api", 2, **fields)
    state = status.workload_state(obj, obj)
    assert (state.ready, state.available) == (ready, available)


def test_stale_observed_generation_is_not_ready() -> None:
    obj = _workload("Deployment", "api", 1, readyReplicas=1, updatedReplicas=1)
    obj["status"]["observedGeneration"] = 1  # controller has not seen generation 2 yet
    assert not status.workload_state(obj, obj).available


def test_missing_workload_is_reported_as_not_created() -> None:
    desired = _workload("Deployment", "excel", 1)
    conds = status.component_conditions([status.workload_state(desired, None)], {})
    assert conds[0].type == "ExcelAvailable"
    assert conds[0].status == "False"
    assert "not created yet" in conds[0].message


def _pod(name: str, phase: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"phase": phase}}


def _event(pod: str, message: str, reason: str = "FailedScheduling") -> dict[str, Any]:
    return {"involvedObject": {"name": pod}, "reason": reason, "message": message}


def test_scheduling_messages_only_of_pending_pods_and_failed_scheduling() -> None:
    pods = [_pod("ml-1", "Pending"), _pod("ml-2", "Running")]
    events = [
        _event("ml-1", "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."),
        _event("ml-2", "Insufficient nvidia.com/gpu"),  # that pod runs now: stale
        _event("ml-1", "pulled", reason="Pulled"),
        _event("other", "Insufficient nvidia.com/gpu"),
    ]
    assert status.scheduling_messages(pods, events) == [
        "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    ]


STANDALONE = ("MonitoringStandalone", "the stack's own Prometheus scrapes", True)


def _available(ctype: str) -> Condition:
    return Condition(ctype, "True", "MinimumReplicasAvailable", "1/1 ready")


def test_summary_ready_when_every_component_is_available() -> None:
    summary = status.summarize(
        [_available("APIAvailable"), _available("MLAvailable")],
        paused=False,
        errors=[],
        monitoring=STANDALONE,
    )
    by_type = {c.type: c for c in summary.conditions}
    assert summary.phase == "Ready"
    assert by_type["Ready"].status == "True"
    assert by_type["Degraded"].status == "False"
    assert by_type["Monitoring"].reason == "MonitoringStandalone"


def test_summary_degraded_with_the_blocking_reason() -> None:
    gpu = Condition("MLAvailable", "False", "InsufficientGPU", "no node has 8 GPUs")
    summary = status.summarize(
        [_available("APIAvailable"), gpu],
        paused=False,
        errors=[],
        monitoring=STANDALONE,
    )
    by_type = {c.type: c for c in summary.conditions}
    assert summary.phase == "Degraded"
    assert by_type["Ready"].reason == "InsufficientGPU"
    assert by_type["Degraded"].reason == "InsufficientGPU"
    assert by_type["Progressing"].status == "False"  # waiting will not fix it


def test_summary_progressing_while_replicas_come_up_and_paused_wins() -> None:
    rolling = Condition("APIAvailable", "False", "ReplicasNotReady", "0/2 ready")
    summary = status.summarize([rolling], paused=False, errors=[], monitoring=STANDALONE)
    assert summary.phase == "Progressing"
    paused = status.summarize([rolling], paused=True, errors=[], monitoring=STANDALONE)
    assert paused.phase == "Paused"
    assert next(c for c in paused.conditions if c.type == "Progressing").reason == "Paused"


def test_missing_secret_error_degrades_even_when_workloads_are_fine() -> None:
    summary = status.summarize(
        [_available("APIAvailable")],
        paused=False,
        errors=[("SentrySecretMissing", "Secret 'x' does not exist")],
        monitoring=STANDALONE,
    )
    assert summary.phase == "Degraded"
    assert next(c for c in summary.conditions if c.type == "Ready").reason == "SentrySecretMissing"


OWNER = {
    "apiVersion": "indexforge.io/v1alpha1",
    "kind": "IndexForge",
    "metadata": {"name": "demo", "namespace": "ns", "uid": "u-1"},
}


def _cm(name: str, owner_uid: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns"}
    if owner_uid:
        meta["ownerReferences"] = [{"uid": owner_uid}]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


def test_with_owner_sets_controller_reference_without_mutating_input() -> None:
    built = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    owned = ownership.with_owner(built, OWNER)
    assert "ownerReferences" not in built["metadata"]
    ref = owned["metadata"]["ownerReferences"][0]
    assert ref["uid"] == "u-1" and ref["controller"] is True and ref["kind"] == "IndexForge"
    assert owned["metadata"]["namespace"] == "ns"


def test_prune_takes_only_our_children_that_are_no_longer_desired() -> None:
    live = [_cm("keep", "u-1"), _cm("stale", "u-1"), _cm("foreign", "u-2"), _cm("hand-made", None)]
    doomed = ownership.prune_candidates(live, [_cm("keep", None)], "u-1")
    assert [o["metadata"]["name"] for o in doomed] == ["stale"]


def _flip(ctype: str, state: str, reason: str) -> dict[str, Any]:
    return {"type": ctype, "status": state, "reason": reason, "message": "m"}


@pytest.mark.parametrize(
    ("flipped", "expected"),
    [
        (_flip("Ready", "True", "AllComponentsAvailable"), ("Normal", "AllComponentsAvailable")),
        (_flip("Ready", "False", "InsufficientGPU"), ("Warning", "InsufficientGPU")),
        (_flip("Degraded", "True", "SentrySecretMissing"), ("Warning", "SentrySecretMissing")),
        (_flip("Degraded", "False", "AsExpected"), ("Normal", "AsExpected")),
        (_flip("MLAvailable", "False", "InsufficientGPU"), ("Warning", "InsufficientGPU")),
        (_flip("Progressing", "False", "ReconcileComplete"), None),
        (_flip("APIAvailable", "True", "MinimumReplicasAvailable"), None),  # routine start-up
        (_flip("APIAvailable", "False", "ReplicasNotReady"), None),
    ],
)
def test_only_meaningful_transitions_become_events(
    flipped: dict[str, Any], expected: tuple[str, str] | None
) -> None:
    events = status.transition_events([flipped])
    assert [(e[0], e[1]) for e in events] == ([expected] if expected else [])


def test_first_pass_announces_ready_and_problems_but_not_start_up_noise() -> None:
    flipped = [
        _flip("Ready", "True", "AllComponentsAvailable"),
        _flip("Degraded", "False", "AsExpected"),
        _flip("MLAvailable", "False", "InsufficientGPU"),
    ]
    events = status.transition_events(flipped, first_pass=True)
    assert [e[1] for e in events] == ["AllComponentsAvailable", "InsufficientGPU"]
    starting = [_flip("Ready", "False", "ReplicasNotReady")]
    assert status.transition_events(starting, first_pass=True) == []


def test_autoscaled_workload_is_available_only_at_its_hpa_floor() -> None:
    dep = _workload("Deployment", "api", 1, readyReplicas=1, updatedReplicas=1)
    hpa = {
        "kind": "HorizontalPodAutoscaler",
        "spec": {"scaleTargetRef": {"name": "x-api"}, "minReplicas": 2},
    }
    floors = status.autoscaled_minimums([dep, hpa])
    assert floors == {"x-api": 2}
    state = status.workload_state(dep, dep, minimum=floors["x-api"])
    assert (state.ready, state.desired, state.available) == (1, 2, False)
    assert status.replica_counts([state]) == {"api": {"ready": 1, "desired": 2}}
