"""One reconcile pass: read -> build -> apply -> prune -> observe -> status.

Kept free of kopf so it can be driven by tests and by ``indexforge render`` alike; the kopf
handlers in ``handlers.py`` only adapt their arguments to this function.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from indexforge_operator import decisions, ownership, secret_store, status
from indexforge_operator.builders import build_all, entry_url
from indexforge_operator.conditions import Condition, flips, merge_conditions
from indexforge_operator.kube import FIELD_MANAGER, RESOURCES, Kube
from indexforge_operator.naming import LABEL_COMPONENT, Names, instance_selector
from indexforge_operator.spec import IndexForgeSpec

Obj = dict[str, Any]
PAUSED_ANNOTATION = "indexforge.io/paused"
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What a pass did and the status it computed; events are (type, reason, message)."""

    status: Obj
    writes: int = 0
    pruned: list[str] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)


def is_paused(body: Obj) -> bool:
    annotations = body.get("metadata", {}).get("annotations") or {}
    return bool(body.get("spec", {}).get("paused")) or annotations.get(PAUSED_ANNOTATION) == "true"


def _selector(names: Names) -> str:
    return ",".join(f"{k}={v}" for k, v in instance_selector(names).items())


def _our_entry(obj: Obj | None) -> Obj | None:
    """This operator's managedFields entry: it moves only when our apply changed something."""
    if obj is None:
        return None
    for entry in obj["metadata"].get("managedFields") or []:
        if entry.get("manager") == FIELD_MANAGER and entry.get("operation") == "Apply":
            return dict(entry)
    return None


def apply_all(kube: Kube, desired: list[Obj]) -> int:
    """Server-side apply each object; returns how many our applies actually changed.

    An apply whose result equals the live object is not persisted by the API server, so an
    unchanged CR costs requests but no writes. Changes are judged by our field manager's
    entry, not resourceVersion, which controllers (status, HPA scaling) also move.
    """
    changed = 0
    for obj in desired:
        before = _our_entry(kube.get(obj))
        after = _our_entry(kube.apply(obj))
        if before is None or before != after:
            changed += 1
    return changed


def prune(
    kube: Kube, names: Names, desired: list[Obj], owner_uid: str, *, monitoring: bool
) -> list[str]:
    live: list[Obj] = []
    for res in RESOURCES:
        if res.api_version.startswith("monitoring.coreos.com") and not monitoring:
            continue
        live.extend(kube.list_objects(res, names.namespace, _selector(names)))
    doomed = ownership.prune_candidates(live, desired, owner_uid)
    for obj in doomed:
        kube.delete(obj)
    return [ownership.describe(o) for o in doomed]


def workload_states(kube: Kube, desired: list[Obj]) -> list[status.WorkloadState]:
    floors = status.autoscaled_minimums(desired)
    return [
        status.workload_state(obj, kube.get(obj), minimum=floors.get(obj["metadata"]["name"], 0))
        for obj in desired
        if obj["kind"] in WORKLOAD_KINDS
    ]


def observe(
    kube: Kube, spec: IndexForgeSpec, names: Names, states: list[status.WorkloadState]
) -> list[Condition]:
    problems: dict[str, tuple[str, str]] = {}
    ml_state = next((s for s in states if s.component == "ml"), None)
    if spec.ml.gpu.enabled and ml_state is not None and not ml_state.available:
        pods = kube.list_pods(names.namespace, f"{LABEL_COMPONENT}=ml,{_selector(names)}")
        events = kube.list_events(
            names.namespace, "involvedObject.kind=Pod,reason=FailedScheduling"
        )
        messages = status.scheduling_messages(pods, events)
        shortage = decisions.gpu_from_scheduling(spec, messages=messages)
        if shortage:
            problems["ml"] = (shortage.reason, shortage.message)
    return status.component_conditions(states, problems)


def reconcile(kube: Kube, body: Obj, *, now: str) -> Outcome:
    meta = body["metadata"]
    names = Names(meta["name"], meta["namespace"])
    generation = int(meta.get("generation", 0))
    previous = (body.get("status") or {}).get("conditions") or []
    try:
        spec = IndexForgeSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        # Admission normally stops these; a CR stored before a schema change can still get here.
        cond = Condition("Ready", "False", "InvalidSpec", str(exc).splitlines()[0])
        return Outcome(
            status={
                "observedGeneration": generation,
                "phase": "Degraded",
                "conditions": merge_conditions(previous, [cond], now=now, generation=generation),
            },
            events=[("Warning", "InvalidSpec", str(exc).splitlines()[0])],
        )

    monitoring = kube.has_api("monitoring.coreos.com/v1", "servicemonitors")
    mode = decisions.monitoring_mode(spec, prometheus_operator=monitoring)
    errors = secret_store.problems(kube, spec, names, prometheus_operator=monitoring)
    secrets = secret_store.load_or_create(kube, names, spec)
    desired = [
        ownership.with_owner(obj, body)
        for obj in build_all(spec, names, secrets=secrets, prometheus_operator=monitoring)
    ]
    outcome = Outcome(status={})
    paused = is_paused(body)
    if not paused:
        outcome.writes = apply_all(kube, desired)
        outcome.pruned = prune(kube, names, desired, meta["uid"], monitoring=monitoring)
    states = workload_states(kube, desired)
    summary = status.summarize(
        observe(kube, spec, names, states),
        paused=paused,
        errors=errors,
        monitoring=(*decisions.mode_message(mode), mode != "Disabled"),
    )
    conditions = merge_conditions(previous, summary.conditions, now=now, generation=generation)
    outcome.status = {
        "observedGeneration": generation,
        "phase": summary.phase,
        "conditions": conditions,
        "components": status.replica_counts(states),
        "endpoint": entry_url(spec, names),
        "gpus": spec.ml.gpu.count * spec.ml.replicas if spec.ml.gpu.enabled else 0,
        "mode": mode,
    }
    # The first pass may already find everything Ready (kwok, warm clusters): it counts as a
    # transition from "nothing known", but only good news and problems are announced.
    outcome.events.extend(
        status.transition_events(flips(previous, conditions), first_pass=not previous)
    )
    if outcome.pruned:
        outcome.events.append(("Normal", "Pruned", f"deleted {', '.join(outcome.pruned)}"))
    return outcome
