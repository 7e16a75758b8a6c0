"""One reconcile pass: read (cache) -> build -> apply what drifted -> prune -> status.

Kept free of kopf: the live children come in as a ``ChildView`` (a snapshot of the watch
cache), so unit tests drive a pass with plain dicts and ``indexforge render`` shares the
builders. A pass asks the API server only for what the cache cannot answer (an object it
does not hold, a user's Secret, scheduling failures) and writes only what differs.
"""

from __future__ import annotations

import base64
import datetime
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from indexforge_operator import (
    decisions,
    on_demand,
    ownership,
    redis_rotation,
    rotation,
    secret_providers,
    secret_store,
    status,
    volumes,
    weaviate_rotation,
)
from indexforge_operator.builders import build_all, entry_url
from indexforge_operator.builders.external_secrets import sync_findings
from indexforge_operator.children import ChildView, cached_form, controller_uid
from indexforge_operator.compare import drift
from indexforge_operator.conditions import Condition, flips, merge_conditions
from indexforge_operator.kube import Kube, error_message
from indexforge_operator.naming import LABEL_COMPONENT, Names, instance_selector
from indexforge_operator.spec import IndexForgeSpec

Obj = dict[str, Any]
PAUSED_ANNOTATION = "indexforge.io/paused"
# Added by operator versions that ran a kopf daemon per CR. Nothing needs it now: children go
# by ownerReference GC and PVCs by the StatefulSets' retention policy, so it is removed.
LEGACY_FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"
GROUP, VERSION, PLURAL = "indexforge.io", "v1alpha1", "indexforges"
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What a pass did and the status it computed; events are (type, reason, message).

    ``status`` is None when there is nothing to report (the CR is being deleted).
    ``failures`` are (reason, message) of objects not applied: the pass is retried later.
    """

    status: Obj | None
    writes: int = 0
    pruned: list[str] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    requeue_after: float | None = None  # a deadline (key rotation) needs a pass by then


def is_paused(body: Obj) -> bool:
    annotations = body.get("metadata", {}).get("annotations") or {}
    return bool(body.get("spec", {}).get("paused")) or annotations.get(PAUSED_ANNOTATION) == "true"


def _selector(names: Names) -> str:
    return ",".join(f"{k}={v}" for k, v in instance_selector(names).items())


_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")


def redact(message: str, obj: Obj) -> str:
    """The server's message without any value of the Secret it is about.

    Quoted parts other than the object's name and data keys go too: the server quotes invalid
    values, and a value may be any fragment of a generated config.
    """
    if obj.get("kind") != "Secret":
        return message
    data = obj.get("data") or {}
    for encoded in data.values():
        for value in (encoded, base64.b64decode(encoded).decode(errors="replace")):
            if value:
                message = message.replace(value, "<redacted>")
    allowed = {obj["metadata"]["name"], *data}

    def keep_known(match: re.Match[str]) -> str:
        return match.group(0) if match.group(0)[1:-1] in allowed else '"<redacted>"'

    return _QUOTED.sub(keep_known, message)


def conflict(obj: Obj, live: Obj, owner_uid: str) -> tuple[str, str] | None:
    """NameConflict when the object exists under another controller (or none): never take it."""
    owner = controller_uid(live)
    if owner == owner_uid:
        return None
    holder = "another controller" if owner else "nothing (created by hand?)"
    return (
        "NameConflict",
        f"{ownership.describe(obj)} already exists and is controlled by {holder}; left "
        "untouched — rename this IndexForge or remove that object",
    )


@dataclass
class Applied:
    writes: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)


def apply_changed(kube: Kube, view: ChildView, desired: list[Obj], owner_uid: str) -> Applied:
    """Apply each desired object that drifted from its live copy; one failure stops nothing.

    An object the cache does not hold is looked up once: it may exist without our label (a
    foreign object of the same name) or the cache may not have caught up with our last write.
    """
    result = Applied()
    for obj in desired:
        live = view.live(obj)
        try:
            if live is None:
                fresh = kube.get(obj)
                live = None if fresh is None else cached_form(fresh)
            if live is not None:
                clash = conflict(obj, live, owner_uid)
                if clash is not None:
                    result.failures.append(clash)
                    continue
            reason = drift(obj, live)
            if reason is None:
                continue
            log.debug("apply %s: %s", ownership.describe(obj), reason)
            kube.apply(obj)
            result.writes += 1
        except ApiException as exc:
            message = redact(error_message(exc), obj)
            result.failures.append(("ApplyFailed", f"{ownership.describe(obj)}: {message}"))
    return result


def prune(kube: Kube, view: ChildView, desired: list[Obj], owner_uid: str) -> list[str]:
    """Delete our children the spec no longer wants (only those carrying our ownerReference)."""
    live = [o for o in view.objects.values() if not on_demand.is_request_job(o)]  # run once
    doomed = ownership.prune_candidates(live, desired, owner_uid)
    for obj in doomed:
        kube.delete(obj)
    return [ownership.describe(o) for o in doomed]


def workload_states(view: ChildView, desired: list[Obj]) -> list[status.WorkloadState]:
    floors = status.autoscaled_minimums(desired)
    return [
        status.workload_state(obj, view.live(obj), minimum=floors.get(obj["metadata"]["name"], 0))
        for obj in desired
        if obj["kind"] in WORKLOAD_KINDS
    ]


def observe(
    kube: Kube,
    spec: IndexForgeSpec,
    names: Names,
    states: list[status.WorkloadState],
    *,
    restore: Obj | None = None,
) -> list[Condition]:
    problems: dict[str, tuple[str, str]] = {}
    if restore is not None and restore.get("result") == "Running" and restore.get("step"):
        # Stopped on purpose: say so instead of "0/0 ready" (Progressing, not Degraded).
        component = str(restore["request"]).partition("/")[0]
        message = f"restore {restore['request']}: {restore['step']}"
        problems[component] = (status.RESTORING, message)
        if component == "redis-state" and spec.redis.state.replication.enabled:
            problems["sentinel"] = (status.RESTORING, message)
    ml_state = next((s for s in states if s.component == "ml"), None)
    if spec.ml.gpu.enabled and ml_state is not None and ml_state.exists and not ml_state.available:
        pods = kube.list_pods(names.namespace, f"{LABEL_COMPONENT}=ml,{_selector(names)}")
        events = kube.list_events(
            names.namespace, "involvedObject.kind=Pod,reason=FailedScheduling"
        )
        messages = status.scheduling_messages(pods, events)
        shortage = decisions.gpu_from_scheduling(spec, messages=messages)
        if shortage:
            problems["ml"] = (shortage.reason, shortage.message)
    return status.component_conditions(states, problems)


def _invalid(body: Obj, exc: ValidationError, *, now: str) -> Outcome:
    # Admission normally stops these; a CR stored before a schema change can still get here.
    meta = body["metadata"]
    generation = int(meta.get("generation", 0))
    previous = (body.get("status") or {}).get("conditions") or []
    first = str(exc).splitlines()[0]
    cond = Condition("Ready", "False", "InvalidSpec", first)
    return Outcome(
        status={
            "observedGeneration": generation,
            "phase": "Degraded",
            "conditions": merge_conditions(previous, [cond], now=now, generation=generation),
        },
        events=[("Warning", "InvalidSpec", first)],
        failures=[("InvalidSpec", first)],
    )


def reconcile(
    kube: Kube,
    body: Obj,
    *,
    view: ChildView,
    prometheus_operator: bool,
    now: str,
    alertmanager_configs: bool | None = None,
    rabbitmq_cluster: bool = False,
    keda: bool = False,
    rabbitmq_topology: bool = False,
    istio: bool = False,
    external_secrets: bool = False,
) -> Outcome:
    meta = body["metadata"]
    if LEGACY_FINALIZER in (meta.get("finalizers") or []):
        kube.remove_finalizer(GROUP, VERSION, PLURAL, meta, LEGACY_FINALIZER)
    if meta.get("deletionTimestamp"):
        return Outcome(status=None)  # garbage collection removes the children
    names = Names(meta["name"], meta["namespace"])
    generation = int(meta.get("generation", 0))
    previous = (body.get("status") or {}).get("conditions") or []
    try:
        spec = IndexForgeSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        return _invalid(body, exc, now=now)

    mode = decisions.monitoring_mode(spec, prometheus_operator=prometheus_operator)
    receivers = secret_store.receiver_keys(kube, spec, names)
    errors = secret_store.problems(
        kube, spec, names, prometheus_operator=prometheus_operator, receivers=receivers
    )
    missing = decisions.check_integrations(
        spec,
        rabbitmq_cluster=rabbitmq_cluster,
        keda=keda,
        rabbitmq_topology=rabbitmq_topology,
        istio=istio,
        external_secrets=external_secrets,
    )
    errors = [*errors, *((f.reason, f.message) for f in missing)]
    source = secret_providers.load(kube, names, spec, view=view)
    # A store that failed (Vault down, login refused): this pass writes nothing, so no Secret
    # is touched and nothing is regenerated; the objects are built only to report status.
    secrets = source.secrets or secret_store.load_or_create(kube, names, spec, view=view)
    paused = is_paused(body)
    writable = not paused and source.failure is None

    def live_or_server(obj: Obj) -> Obj | None:
        return view.live(obj) or kube.get(obj)

    rotated = rotation.handle(
        kube, body, spec, names, live=live_or_server, cached=view.live, secrets=secrets,
        now=rotation.parse_time(now) or datetime.datetime.now(datetime.UTC), write=writable,
    )  # fmt: skip
    # After the key rotation: a Redis rotation's readiness compares the gateway with what
    # both rotations make of it.
    redis_rotated = redis_rotation.handle(
        kube, body, spec, names, live=live_or_server, cached=view.live, secrets=rotated.secrets,
        now=rotation.parse_time(now) or datetime.datetime.now(datetime.UTC), write=writable,
    )  # fmt: skip
    weaviate_rotated = weaviate_rotation.handle(
        kube, body, spec, names, live=live_or_server, cached=view.live,
        secrets=redis_rotated.secrets,
        now=rotation.parse_time(now) or datetime.datetime.now(datetime.UTC), write=writable,
    )  # fmt: skip
    secrets = weaviate_rotated.secrets
    present = decisions.components(spec, prometheus_operator=prometheus_operator)
    # Restores first: a Redis restore decides whether this pass renders its Redis stopped.
    restores = on_demand.handle(
        kube, body, spec, names, present=present, write=writable, now=now, kinds=("restore",)
    )
    restoring = on_demand.restoring(restores.status)
    built = build_all(
        spec,
        names,
        secrets=secrets,
        prometheus_operator=prometheus_operator,
        alertmanager_configs=alertmanager_configs,
        receiver_keys=receivers or (),
        rabbitmq_cluster=rabbitmq_cluster,
        keda=keda,
        rabbitmq_topology=rabbitmq_topology,
        istio=istio,
        restoring=restoring,
        external_secrets=external_secrets,
    )
    desired = [
        *(ownership.with_owner(obj, body) for obj in built),
        *rotated.objects,
        *redis_rotated.objects,
        *weaviate_rotated.objects,
    ]
    # The earliest deadline: a key rotation's next phase, the next read of Vault (a value
    # changed there has no event).
    deadlines = (
        rotated.wake_in,
        redis_rotated.wake_in,
        weaviate_rotated.wake_in,
        source.requeue_after,
    )
    wake = [t for t in deadlines if t is not None]
    outcome = Outcome(status={}, requeue_after=min(wake, default=None))
    # Grown volumes first: a StatefulSet being re-created is left out of this pass's apply.
    grown = volumes.expand(
        kube, view, desired, namespace=names.namespace, selector=_selector(names),
        previous=previous, write=writable,
    )  # fmt: skip
    desired = grown.desired
    errors += grown.findings
    errors += sync_findings(desired, view.live)
    if writable:
        to_apply = [o for o in desired if not volumes.is_held(o, grown.held)]
        applied = apply_changed(kube, view, to_apply, meta["uid"])
        outcome.writes = (
            applied.writes
            + grown.writes
            + rotated.writes
            + redis_rotated.writes
            + weaviate_rotated.writes
        )
        outcome.failures = [
            *rotated.failures,
            *redis_rotated.failures,
            *weaviate_rotated.failures,
            *applied.failures,
        ]
        outcome.pruned = prune(kube, view, desired, meta["uid"])
    if source.failure is not None:
        outcome.failures.append(source.failure)
    backups = on_demand.handle(
        kube, body, spec, names, present=present, write=writable, now=now, kinds=("backup",)
    )
    requests = on_demand.Handled(
        status={**backups.status, **restores.status},
        conditions=[*backups.conditions, *restores.conditions],
        events=[*backups.events, *restores.events],
        writes=backups.writes + restores.writes,
    )
    outcome.writes += requests.writes
    states = workload_states(view, desired)
    summary = status.summarize(
        observe(kube, spec, names, states, restore=restores.status.get("restoreRequest")),
        paused=paused,
        errors=[*outcome.failures, *errors],
        monitoring=(*decisions.mode_message(mode), mode != "Disabled"),
    )
    extra = [*requests.conditions, *rotated.conditions, *weaviate_rotated.conditions]
    extra += [grown.condition] if grown.condition is not None else []
    conditions = merge_conditions(
        previous, [*summary.conditions, *extra], now=now, generation=generation
    )
    outcome.status = {
        "observedGeneration": generation,
        "phase": summary.phase,
        "conditions": conditions,
        "components": status.replica_counts(states),
        "endpoint": entry_url(spec, names),
        "gpus": spec.ml.gpu.count * spec.ml.replicas if spec.ml.gpu.enabled else 0,
        "mode": mode,
        **requests.status,
        **rotated.status,
        **redis_rotated.status,
        **weaviate_rotated.status,
    }
    # The first pass may already find everything Ready (kwok, warm clusters): it counts as a
    # transition from "nothing known", but only good news and problems are announced.
    outcome.events.extend(
        status.transition_events(flips(previous, conditions), first_pass=not previous)
    )
    outcome.events.extend(("Warning", reason, message) for reason, message in outcome.failures)
    outcome.events.extend(
        [
            *grown.events,
            *requests.events,
            *rotated.events,
            *redis_rotated.events,
            *weaviate_rotated.events,
        ]
    )
    if outcome.pruned:
        outcome.events.append(("Normal", "Pruned", f"deleted {', '.join(outcome.pruned)}"))
    return outcome
