"""Weaviate API-key rotation with overlap: by annotation or on a schedule.

    kubectl annotate --overwrite indexforge/<name> indexforge.io/rotate-weaviate-key=2026-12-03

The value is the request's identity (any text; a new value is a new request), as for the
gateway keys and Redis passwords (rotation.py, whose helpers this reuses).
``spec.weaviate.keyRotation.intervalHours`` rotates on a schedule.

Why rolling restarts (Weaviate 1.35.2's source decided it):

- Static keys are fixed for the process's life: ``AUTHENTICATION_APIKEY_ALLOWED_KEYS`` is read
  from the environment at start (usecases/config/environment.go, split on ","), hashed once in
  ``apikey.NewStatic``/``parseKeys`` (usecases/auth/authentication/apikey/client.go); nothing
  re-reads them. But the list may hold several keys (one user for all of them), so old and
  new can be valid together.
- Runtime overrides (``RUNTIME_OVERRIDES_*``) reload only the fields of
  ``WeaviateRuntimeConfig`` (usecases/config/runtimeconfig.go): for authentication, the OIDC
  settings; no API-key field is live.
- Dynamic DB users (``AUTHENTICATION_DB_USERS_ENABLED``, ``/v1/users/db``) change without a
  restart, but Weaviate generates each key itself (handlers_db_users.go ``createUser``/
  ``rotateKey``; only a key already in the static list can be imported), one key per user,
  and ``RotateKey`` replaces it at once (apikey/db_users.go): overlap needs two users, the
  operator would have to call Weaviate's API with a root key that itself never rotates, copy
  keys Weaviate made into the Secrets (and could not seed Vault/External Secrets with them),
  and RBAC would have to be on (without it any key may create users). The operator would sit
  in Weaviate's data path; the static chart could not follow.

So the key list changes by restarting Weaviate's pods, and the StatefulSet controller does
that as a controlled rolling restart: one pod at a time, from the highest ordinal, the next
only once the restarted one is available (RollingUpdate with maxUnavailable 1, the default;
kube-controller-manager 1.36 pkg/controller/statefulset/stateful_set_control.go, both with and
without the MaxUnavailableStatefulSet gate; ``podManagementPolicy: Parallel`` only affects
scaling). The operator changes the pod template once per step and watches the rollout.
Two restarts per rotation are the fewest that give a fresh key overlap (one to accept it, one
to drop the old); keeping a spare "next" key accepted in advance would save one, but a leaked
Secret would leak the spare too, and a rotation after a leak must not hand out a key the
attacker holds.

Three phases, each written to the state Secret before anything acts on it (a restarted
operator resumes), none of which makes a client's request fail:

1. ``Issued``: a new key; the internal-auth Secret's ``weaviate-api-keys`` is ``new,old`` and
   Weaviate's ``AUTHENTICATION_APIKEY_ALLOWED_KEYS`` refers to it (that template change rolls
   the pods); clients' ``weaviate-api-key`` is still the old one. Next once the StatefulSet
   has rolled out completely (every pod updated and ready, its controller saw the change).
2. ``Published``: clients' key is the new one (a mounted file the API, workers and backup jobs
   re-read: no restart of theirs). Nothing rolls.
3. ``Idle`` after ``gracePeriodSeconds`` (and once the Secret holds the new key): Weaviate's
   variable refers to ``weaviate-api-key`` (the new key alone) again: the second rolling
   restart, after which the old key gets 401.

A restart is without an outage only if every object keeps a quorum on the other pods: QUORUM
needs ``f // 2 + 1`` of ``f`` copies, so the effective replicationFactor must be 3 or more
(raft needs three nodes too). Otherwise a request (and the schedule) is refused with that
reason unless ``allowRestartOutage`` accepts a short outage per restart (one replica: Weaviate
is down while its pod restarts). Also refused: ``secrets.provider`` vault or externalSecrets
(the key lives in the store). A rollout that does not finish within
``rolloutTimeoutSeconds`` (a pod that cannot start) is reported stuck (Event, condition
``WeaviateKeyRotation`` False ``WeaviateRolloutStuck``, the stuck gauge with credential
``weaviate-key``, as for the gateway keys); the rotation waits, and clients keep the old key,
which every pod accepts.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets as token_source
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from indexforge_operator import metrics, ownership, rotation
from indexforge_operator.builders.common import secret
from indexforge_operator.builders.weaviate import build_weaviate
from indexforge_operator.conditions import Condition
from indexforge_operator.generated import (
    WEAVIATE_API_KEYS_KEY,
    GeneratedSecrets,
    weaviate_keys_value,
)
from indexforge_operator.kube import Kube
from indexforge_operator.naming import Names
from indexforge_operator.rotation import (
    Layout,
    State,
    format_time,
    load_state,
    persist,
    read_request,
    stored_elsewhere,
    take_request,
)
from indexforge_operator.spec import IndexForgeSpec

Obj = dict[str, Any]
ANNOTATION = "indexforge.io/rotate-weaviate-key"
STATUS = "weaviateKeyRotation"
TARGET = "weaviate"
KIND = "WeaviateKeyRotation"  # prefix of the Events' reasons; also the condition's type
METRIC_CREDENTIAL = "weaviate-key"  # the stuck gauge's credential label
LAYOUT = Layout(
    secret_name=lambda names: names.weaviate_key_rotation,
    component=None,
    prefix="indexforge.io/weaviate-rotation-",
    targets="targets",
)


def state_from_secret(obj: Obj | None) -> State | None:
    """The stored state; None when it is not ours to act on (edited by hand: a target other
    than Weaviate, or keys Weaviate would misread in its list): the rotation starts afresh and
    Weaviate goes back to the key clients hold, so nothing is lost."""
    state = rotation.state_from_secret(obj, LAYOUT)
    if state is None:
        return None
    if not set(state.consumers) <= {TARGET}:
        return None
    if TARGET in state.keys and unlistable(state.keys[TARGET]):
        return None
    return state


def unlistable(keys: tuple[str, ...]) -> str | None:
    """Why Weaviate could not take ``keys`` as its allowed list (None: it could)."""
    try:
        weaviate_keys_value(keys)
    except ValueError as exc:
        return str(exc)
    return None


def state_secret(names: Names, state: State) -> Obj:
    return rotation.state_secret(names, state, LAYOUT)


def apply_to(secrets: GeneratedSecrets, state: State | None) -> GeneratedSecrets:
    """Clients' key and the keys Weaviate accepts under ``state`` (the same list in both
    phases: Weaviate rolls once to accept it)."""
    if state is None or state.phase == "Idle" or TARGET not in state.keys:
        return secrets
    old, new = state.keys[TARGET]
    return replace(
        secrets,
        weaviate_api_key=old if state.phase == "Issued" else new,
        weaviate_accepted=(new, old),
    )


def desired_statefulset(spec: IndexForgeSpec, names: Names, *, overlap: bool) -> Obj:
    built = build_weaviate(spec, names, key_overlap=overlap)
    return next(o for o in built if o["kind"] == "StatefulSet")


def _keys_ref(obj: Obj | None) -> str | None:
    """The internal-auth key Weaviate's allowed-keys variable refers to in a StatefulSet."""
    containers = (((obj or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    for container in containers.get("containers") or []:
        for var in container.get("env") or []:
            if var.get("name") == "AUTHENTICATION_APIKEY_ALLOWED_KEYS":
                ref = (var.get("valueFrom") or {}).get("secretKeyRef") or {}
                return str(ref.get("key")) if ref.get("key") else None
    return None


def rolled_out(desired: Obj, live: Obj | None) -> bool:
    """Every Weaviate pod restarted with the desired key list: the live StatefulSet refers to
    it, its controller saw that spec, and every replica is updated and ready."""
    if live is None or _keys_ref(live) != _keys_ref(desired):
        return False
    status = live.get("status") or {}
    if int(status.get("observedGeneration", 0)) < int(live["metadata"].get("generation", 0)):
        return False
    replicas = int((live.get("spec") or {}).get("replicas", 1))
    counts = [status.get(k, 0) or 0 for k in ("updatedReplicas", "readyReplicas", "replicas")]
    return all(int(c) == replicas for c in counts)


# --- decisions (pure) ------------------------------------------------------------------------


def restart_outage(spec: IndexForgeSpec) -> str | None:
    """Why restarting one Weaviate pod would make objects unavailable (None: it would not)."""
    w = spec.weaviate
    factor = w.effective_replication_factor
    if factor >= 3:
        return None
    return (
        f"weaviate has {w.replicas} replica(s) and replication factor {factor}: restarting a "
        f"pod (twice per rotation) leaves some objects without a quorum ({factor // 2 + 1} of "
        f"{factor} copies), a short outage each time; set weaviate.keyRotation."
        "allowRestartOutage: true to accept it, or run 3 replicas with replicationFactor 3"
    )


def refusal(spec: IndexForgeSpec) -> str | None:
    """Why no rotation may start now (None: it may)."""
    elsewhere = stored_elsewhere(spec, "the Weaviate API key")
    if elsewhere:
        return elsewhere
    if spec.weaviate.key_rotation.allow_restart_outage:
        return None
    return restart_outage(spec)


@dataclass
class Decision:
    state: State | None
    events: list[tuple[str, str, str]] = field(default_factory=list)
    record: Obj = field(default_factory=dict)  # status.weaviateKeyRotation (no keys)
    stuck: bool = False
    wake_in: float | None = None  # seconds until a deadline needs a pass


def _advance(
    state: State,
    spec: IndexForgeSpec,
    out: Decision,
    *,
    rolled: bool,
    current: str,
    now: dt.datetime,
) -> State:
    """A running rotation's next phase, when its conditions hold."""
    settings = spec.weaviate.key_rotation
    _, new = state.keys[TARGET]
    if state.phase == "Issued":
        if rolled:
            retire = now + dt.timedelta(seconds=settings.grace_period_seconds)
            out.events.append(
                (
                    "Normal",
                    "WeaviateKeyPublished",
                    f"{state.request}: every Weaviate pod accepts the new and the old key; "
                    f"clients get the new one, the old one stays valid until {format_time(retire)}",
                )
            )
            return replace(state, phase="Published", published_at=now)
        deadline = (state.started_at or now) + dt.timedelta(
            seconds=settings.rollout_timeout_seconds
        )
        out.stuck = now >= deadline
        out.wake_in = None if out.stuck else max(1.0, (deadline - now).total_seconds())
        return state
    retire_at = (state.published_at or now) + dt.timedelta(seconds=settings.grace_period_seconds)
    if now >= retire_at and current == new:
        out.events.append(
            (
                "Normal",
                "OldWeaviateKeyRetired",
                f"{state.request}: Weaviate restarts one pod at a time without the old key; "
                "it is refused (401) once every pod has restarted",
            )
        )
        return state.retired(now)
    out.wake_in = max(1.0, (retire_at - now).total_seconds())
    return state


def decide(
    state: State | None,
    *,
    spec: IndexForgeSpec,
    annotation: str | None,
    previous: Obj | None,
    current: str,
    rolled: bool,
    now: dt.datetime,
    token: Callable[[], str],
) -> Decision:
    """The next state from the stored one, the request, the clock and what was observed.

    ``current``: clients' key as the internal-auth Secret holds it now; ``rolled``: Weaviate's
    StatefulSet runs the running phase's key list on every pod; ``previous``: the last status
    record (which refusals and queued requests were already announced)."""
    request = read_request(state, annotation, previous)
    value, out = request.value, Decision(state=state)
    settings = spec.weaviate.key_rotation

    elsewhere = stored_elsewhere(spec, "the Weaviate API key")
    if elsewhere:
        out.state = None  # nothing to rotate; the state Secret is pruned
        if request.new and value is not None:
            out.events.append(("Warning", f"{KIND}Refused", f"{value}: {elsewhere}"))
            out.record = {"phase": "Idle", "refused": value, "message": elsewhere}
        elif (previous or {}).get("refused"):  # still refused: keep saying so
            out.record = {"phase": "Idle", "refused": (previous or {})["refused"],
                          "message": elsewhere}  # fmt: skip
        elif settings.interval_hours > 0:
            out.record = {"phase": "Idle", "message": f"scheduled rotation off: {elsewhere}"}
        return out

    if state is not None and state.phase != "Idle":
        if TARGET in state.keys:
            state = _advance(state, spec, out, rolled=rolled, current=current, now=now)
        else:  # a state without keys cannot run (state_from_secret makes it Idle)
            state = replace(state, phase="Idle", completed_at=now)
    idle = state is None or state.phase == "Idle"
    why_not = refusal(spec)

    garbled = unlistable((current,))
    if garbled and not why_not:
        why_not = f"the stored weaviate-api-key cannot be listed beside a new key: {garbled}"

    def parse(_value: str) -> tuple[tuple[str, ...], str | None]:
        return ((), why_not) if why_not else ((TARGET,), None)

    interval = settings.interval_hours
    if why_not and idle and interval > 0 and not (request.new and value is not None):
        interval = 0  # the schedule does not start what a request would be refused
        out.record["message"] = f"scheduled rotation off: {why_not}"
    state, queued, wake = take_request(
        state, request, parse=parse, scheduled=(TARGET,), interval_hours=interval,
        published={TARGET: current}, now=now, token=token, record=out.record,
        events=out.events, kind=KIND,
    )  # fmt: skip
    out.wake_in = wake if idle else out.wake_in
    if idle and state is not None and state.phase == "Issued":
        out.wake_in = float(settings.rollout_timeout_seconds)
        out.events.append(
            (
                "Normal",
                f"{KIND}Started",
                f"{state.request}: new Weaviate API key issued; Weaviate restarts one pod at a "
                "time to accept it beside the old one before clients get it",
            )
        )
    if out.stuck and not (previous or {}).get("stuck"):
        out.events.append(
            (
                "Warning",
                f"{KIND}Stuck",
                f"{state.request if state else ''}: Weaviate has not restarted every pod with "
                f"the new key within {settings.rollout_timeout_seconds}s; clients keep the "
                "old key, which every pod accepts",
            )
        )
    out.state = state
    out.record = {**record(state, spec, queued=queued, stuck=out.stuck), **out.record}
    return out


def record(
    state: State | None, spec: IndexForgeSpec, *, queued: str | None = None, stuck: bool = False
) -> Obj:
    """status.weaviateKeyRotation: the state without keys."""
    if state is None:
        return {"phase": "Idle"}
    out: Obj = {"phase": state.phase, "request": state.request}
    settings = spec.weaviate.key_rotation
    times = {
        "startedAt": state.started_at,
        "publishedAt": state.published_at,
        "completedAt": state.completed_at,
    }
    if state.phase == "Published" and state.published_at is not None:
        times["retireAfter"] = state.published_at + dt.timedelta(
            seconds=settings.grace_period_seconds
        )
    out.update({k: format_time(v) for k, v in times.items() if v is not None})
    if queued:
        out["queued"] = queued
    if stuck:
        out["stuck"] = True
    return out


def condition(state: State | None, *, stuck: bool, timeout: int) -> Condition | None:
    """``WeaviateKeyRotation``: where a rotation is (none before the first one)."""
    if state is None:
        return None
    if stuck:
        return Condition(
            KIND,
            "False",
            "WeaviateRolloutStuck",
            f"{state.request}: Weaviate has not restarted every pod with the new key within "
            f"{timeout}s",
        )
    if state.phase == "Issued":
        return Condition(
            KIND, "Unknown", "KeyIssued",
            f"{state.request}: Weaviate restarts one pod at a time to accept the new key",
        )  # fmt: skip
    if state.phase == "Published":
        return Condition(
            KIND, "Unknown", "GracePeriod",
            f"{state.request}: clients use the new key, the old one is valid until retired",
        )  # fmt: skip
    return Condition(
        KIND, "True", "KeysCurrent", f"no rotation running; last: {state.request or 'none'}"
    )


# --- cluster side ----------------------------------------------------------------------------


@dataclass
class Handled:
    secrets: GeneratedSecrets
    objects: list[Obj] = field(default_factory=list)  # the state Secret (kept from pruning)
    status: Obj = field(default_factory=dict)
    conditions: list[Condition] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    writes: int = 0
    wake_in: float | None = None


def _observed(
    spec: IndexForgeSpec, names: Names, stored: State | None, live: Callable[[Obj], Obj | None]
) -> bool:
    """In Issued: the Secret lists the new key and every Weaviate pod restarted with it."""
    if stored is None or stored.phase != "Issued" or TARGET not in stored.keys:
        return False
    _, new = stored.keys[TARGET]
    auth = live(secret(names, None, names.internal_auth, {})) or {}
    listed = base64.b64decode((auth.get("data") or {}).get(WEAVIATE_API_KEYS_KEY, "")).decode()
    if new not in listed.split(","):
        return False  # the pods may have restarted before the Secret held the list
    desired = desired_statefulset(spec, names, overlap=True)
    return rolled_out(desired, live(desired))


def handle(
    kube: Kube,
    body: Obj,
    spec: IndexForgeSpec,
    names: Names,
    *,
    live: Callable[[Obj], Obj | None],
    cached: Callable[[Obj], Obj | None] | None = None,
    secrets: GeneratedSecrets,
    now: dt.datetime,
    write: bool,
    token: Callable[[], str] = lambda: token_source.token_urlsafe(32),
) -> Handled:
    """Read the stored state, decide, persist the next state first, return the secrets the
    builders must use. ``write`` False (paused, store unreadable): report only."""
    previous = (body.get("status") or {}).get(STATUS)
    annotation = (body["metadata"].get("annotations") or {}).get(ANNOTATION)
    scheduled = spec.weaviate.key_rotation.interval_hours > 0
    stored_obj = load_state(names, LAYOUT, live=live, cached=cached,
                            needed=bool(annotation or previous or scheduled))  # fmt: skip
    stored = state_from_secret(stored_obj)
    discarded = stored_obj is not None and stored is None
    decision = decide(
        stored,
        spec=spec,
        annotation=annotation if write else None,
        previous=previous,
        current=secrets.weaviate_api_key,
        rolled=_observed(spec, names, stored, live),
        now=now,
        token=token,
    )
    state = decision.state if write else stored
    out = Handled(secrets=secrets, wake_in=decision.wake_in, events=decision.events)
    if discarded:
        out.events.append(
            (
                "Warning",
                f"{KIND}StateInvalid",
                f"Secret {names.weaviate_key_rotation} names another target or keys Weaviate "
                "would misread; it is discarded and Weaviate keeps the key clients hold",
            )
        )
    if write and state is not None and state != stored:
        failure = persist(kube, body, names, state, LAYOUT)
        if failure is None:
            out.writes += 1
        else:  # nothing acts on an unsaved state: the phase stays
            out.failures.append((f"{KIND}NotSaved", failure))
            state, out.events = stored, []
            decision.record = record(stored, spec)
    if state is not None and (write or stored_obj is not None):
        out.objects.append(ownership.with_owner(state_secret(names, state), body))
    out.secrets = apply_to(secrets, state)
    if state is not None or decision.record.get("refused") or decision.record.get("message"):
        out.status = {STATUS: decision.record}
    stuck = decision.stuck and state == decision.state  # an unsaved state is not stuck
    timeout = spec.weaviate.key_rotation.rollout_timeout_seconds
    cond = condition(state, stuck=stuck, timeout=timeout)
    if cond is not None:
        out.conditions.append(cond)
    metrics.set_rotation_stuck(namespace=names.namespace, name=names.instance,
                               credential=METRIC_CREDENTIAL, stuck=stuck)  # fmt: skip
    return out
