"""Redis password rotation with overlap and no Redis restart: by annotation or on a schedule.

    kubectl annotate indexforge/<name> indexforge.io/rotate-redis=all
    kubectl annotate indexforge/<name> indexforge.io/rotate-redis=redis-app,redis-ml:2026-12-03

Request identity, queueing and the write-ahead state Secret work as for the gateway keys
(rotation.py, whose helpers this reuses). Each Redis pod's ACL sync sidecar applies the
accepted-password list of the internal-auth Secret live (builders/redis_acl.py); the services
re-read their password file on every new connection; Kong's kong.yml carries the app Redis
password and rolls when it changes. Three phases, none of which can make a client fail:

1. ``Issued``: the list is ``new, old``; clients' password (``<instance>-password``) is still
   the old one. Next once ``propagationSeconds`` passed (the kubelet's bound for a Secret to
   reach the pods' files plus the sidecar's interval: the operator cannot read the applied
   list without pods/exec, which it is not granted) and the Redis StatefulSets are ready.
2. ``Published``: clients' password is the new one (Kong rolls; both are accepted).
3. ``Idle`` after ``gracePeriodSeconds``, once the gateway rolled out and the internal-auth
   Secret holds the new password: the list is ``new``; an AUTH with the old one is refused.

Refused: with ``secrets.provider`` vault or externalSecrets (the passwords live there), and
the state Redis while it is replicated: its replicas' masterauth and the sentinels' own
password and auth-pass are set at their start only, so after retirement a restarted replica
would still work (it reads the new file) but a running sentinel would not. ``all`` then rotates
app and ml and says so.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets as token_source
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from indexforge_operator import ownership, rotation
from indexforge_operator.builders.common import secret
from indexforge_operator.generated import REDIS_INSTANCES, GeneratedSecrets, redis_passwords_key
from indexforge_operator.kube import Kube
from indexforge_operator.naming import Names
from indexforge_operator.rotation import (
    ALL,
    Layout,
    State,
    desired_gateway,
    format_time,
    gateway_rolled_out,
    load_state,
    persist,
    read_request,
    request_targets,
    stored_elsewhere,
    take_request,
)
from indexforge_operator.spec import IndexForgeSpec

Obj = dict[str, Any]
ANNOTATION = "indexforge.io/rotate-redis"
STATUS = "redisPasswordRotation"
# The gateway key rotation's State and Secret form: ``consumers`` are Redis instances here and
# ``keys`` their (old, new) passwords.
LAYOUT = Layout(
    secret_name=lambda names: names.redis_password_rotation,
    component=None,
    prefix="indexforge.io/redis-rotation-",
    targets="instances",
)


def state_from_secret(obj: Obj | None) -> State | None:
    state = rotation.state_from_secret(obj, LAYOUT)
    if state is None or set(state.consumers) <= set(REDIS_INSTANCES):
        return state
    return None  # not ours to act on (edited by hand): start afresh


def state_secret(names: Names, state: State) -> Obj:
    return rotation.state_secret(names, state, LAYOUT)


def apply_to(secrets: GeneratedSecrets, state: State | None) -> GeneratedSecrets:
    """Clients' password and every accepted one under ``state`` (the same list in both phases:
    the sidecar applies it once)."""
    if state is None or state.phase == "Idle":
        return secrets
    current = dict(secrets.redis_passwords)
    accepted = dict(secrets.redis_accepted)
    for instance, (old, new) in state.keys.items():
        current[instance] = old if state.phase == "Issued" else new
        accepted[instance] = (new, old)
    return replace(
        secrets,
        redis_passwords=MappingProxyType(current),
        redis_accepted=MappingProxyType(accepted),
    )


def statefulset_ready(live: Obj | None) -> bool:
    """Every pod of a live StatefulSet is updated and ready (its controller saw its spec)."""
    if live is None:
        return False
    status = live.get("status") or {}
    if int(status.get("observedGeneration", 0)) < int(live["metadata"].get("generation", 0)):
        return False
    replicas = int(live.get("spec", {}).get("replicas", 1))
    counts = [status.get(k, 0) or 0 for k in ("readyReplicas", "updatedReplicas", "replicas")]
    return all(int(c) == replicas for c in counts)


# --- decisions (pure) ------------------------------------------------------------------------


def rotatable(spec: IndexForgeSpec) -> list[str]:
    """Instances the operator can rotate now (see the module docstring on replication)."""
    replicated = spec.redis.state.replication.enabled
    return [i for i in REDIS_INSTANCES if not (i == "redis-state" and replicated)]


def parse_request(value: str, spec: IndexForgeSpec) -> tuple[tuple[str, ...], str | None]:
    """(instances, None) or ((), why it is refused) for an annotation value."""
    wanted, known = request_targets(value), rotatable(spec)
    if wanted == [ALL]:
        return tuple(known), None
    if "redis-state" in wanted and "redis-state" not in known:
        return (), (
            "redis-state is replicated (redis.state.replication.enabled): its sentinels and "
            "replicas read the password at start only, so it is not rotated live; rotate it "
            "with replication off, or name redis-app/redis-ml"
        )
    unknown = sorted(set(wanted) - set(REDIS_INSTANCES))
    if not wanted or unknown:
        return (), (
            f"{ANNOTATION} names no Redis instance: {', '.join(unknown)[:200] or value[:100]!r} "
            f"(known: {', '.join(REDIS_INSTANCES)}; or 'all')"
        )
    return tuple(dict.fromkeys(wanted)), None


@dataclass
class Decision:
    state: State | None
    events: list[tuple[str, str, str]] = field(default_factory=list)
    record: Obj = field(default_factory=dict)  # status.redisPasswordRotation (no passwords)
    wake_in: float | None = None  # seconds until a deadline needs a pass


def _advance(
    state: State,
    spec: IndexForgeSpec,
    out: Decision,
    *,
    ready: bool,
    rolled_out: bool,
    current: Mapping[str, str],
    now: dt.datetime,
) -> State:
    """A running rotation's next phase, when its conditions hold."""
    settings = spec.redis.password_rotation
    if state.phase == "Issued":
        publish_at = (state.started_at or now) + dt.timedelta(seconds=settings.propagation_seconds)
        if now >= publish_at and ready:
            out.events.append(
                (
                    "Normal",
                    "RedisPasswordRotationPublished",
                    f"{state.request}: clients of {', '.join(state.consumers)} get "
                    "the new password; the old one stays accepted",
                )
            )
            return replace(state, phase="Published", published_at=now)
        # Not ready yet: a StatefulSet's change wakes a pass; the clock needs a timer.
        out.wake_in = max(1.0, (publish_at - now).total_seconds())
        return state
    retire_at = (state.published_at or now) + dt.timedelta(seconds=settings.grace_period_seconds)
    holds_new = all(current.get(i) == new for i, (_, new) in state.keys.items())
    if now >= retire_at and rolled_out and holds_new:
        out.events.append(
            (
                "Normal",
                "OldRedisPasswordRetired",
                f"{state.request}: old password of {', '.join(state.consumers)} "
                "is no longer accepted",
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
    current: Mapping[str, str],
    ready: bool,
    rolled_out: bool,
    now: dt.datetime,
    token: Callable[[], str],
) -> Decision:
    """The next state from the stored one, the request, the clock and what was observed.

    ``current``: clients' password per instance as the internal-auth Secret holds it now;
    ``ready``: the rotated Redis StatefulSets are ready; ``rolled_out``: the gateway runs the
    desired kong.yml (True without a gateway); ``previous``: the last status record."""
    request = read_request(state, annotation, previous)
    value, out = request.value, Decision(state=state)
    settings = spec.redis.password_rotation

    elsewhere = stored_elsewhere(spec, "the Redis passwords")
    if elsewhere:
        out.state = None  # nothing to rotate; the state Secret is pruned
        if request.new and value is not None:
            out.events.append(("Warning", "RedisPasswordRotationRefused", f"{value}: {elsewhere}"))
            out.record = {"phase": "Idle", "refused": value, "message": elsewhere}
        elif settings.interval_hours > 0:
            out.record = {"phase": "Idle", "message": f"scheduled rotation off: {elsewhere}"}
        return out

    if state is not None and state.phase != "Idle":
        state = _advance(
            state, spec, out, ready=ready, rolled_out=rolled_out, current=current, now=now
        )
    idle = state is None or state.phase == "Idle"
    state, queued, wake = take_request(
        state, request, parse=lambda v: parse_request(v, spec), scheduled=tuple(rotatable(spec)),
        interval_hours=settings.interval_hours, published=current, now=now, token=token,
        record=out.record, events=out.events, kind="RedisPasswordRotation",
    )  # fmt: skip
    out.wake_in = wake if idle else out.wake_in
    if idle and state is not None and state.phase == "Issued":
        out.wake_in = float(settings.propagation_seconds)
        skipped = sorted(set(REDIS_INSTANCES) - set(rotatable(spec)))
        note = f" ({', '.join(skipped)} skipped: replicated)" if skipped else ""
        out.events.append(
            (
                "Normal",
                "RedisPasswordRotationStarted",
                f"{state.request}: new password issued for {', '.join(state.consumers)}{note}; "
                "Redis accepts both before clients get the new one",
            )
        )
    out.state = state
    out.record = {**record(state, spec, queued=queued), **out.record}
    return out


def record(state: State | None, spec: IndexForgeSpec, *, queued: str | None = None) -> Obj:
    """status.redisPasswordRotation: the state without passwords."""
    if state is None:
        return {"phase": "Idle"}
    out: Obj = {"phase": state.phase, "request": state.request, "instances": list(state.consumers)}
    settings = spec.redis.password_rotation
    times = {
        "startedAt": state.started_at,
        "publishedAt": state.published_at,
        "completedAt": state.completed_at,
    }
    if state.phase == "Issued" and state.started_at is not None:
        times["publishAfter"] = state.started_at + dt.timedelta(
            seconds=settings.propagation_seconds
        )
    if state.phase == "Published" and state.published_at is not None:
        times["retireAfter"] = state.published_at + dt.timedelta(
            seconds=settings.grace_period_seconds
        )
    out.update({k: format_time(v) for k, v in times.items() if v is not None})
    if queued:
        out["queued"] = queued
    return out


# --- cluster side ----------------------------------------------------------------------------


@dataclass
class Handled:
    secrets: GeneratedSecrets
    objects: list[Obj] = field(default_factory=list)  # the state Secret (kept from pruning)
    status: Obj = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    writes: int = 0
    wake_in: float | None = None


def _observed(
    spec: IndexForgeSpec,
    names: Names,
    stored: State | None,
    secrets: GeneratedSecrets,
    live: Callable[[Obj], Obj | None],
) -> tuple[bool, bool]:
    """(Redis StatefulSets ready, gateway rolled out) as far as the running phase needs."""
    if stored is None or stored.phase == "Idle":
        return False, False
    # The list with the new password was written (the propagation clock assumes it was).
    auth = live(secret(names, None, names.internal_auth, {})) or {}
    data = auth.get("data") or {}
    listed = {
        i: base64.b64decode(data.get(redis_passwords_key(i), "")).decode().split()
        for i in stored.consumers
    }
    ready = all(new in listed[i] for i, (_, new) in stored.keys.items()) and all(
        statefulset_ready(live(_ref(names, "StatefulSet", names.component(i))))  # type: ignore[arg-type]
        for i in stored.consumers
    )
    gateway = desired_gateway(spec, names, apply_to(secrets, stored))
    rolled = gateway is None or gateway_rolled_out(gateway, live(gateway))
    return ready, rolled


def _ref(names: Names, kind: str, name: str) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": names.namespace},
    }


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
    builders must use (``secrets`` as the gateway key rotation left them). ``write`` False
    (paused, store unreadable): report only."""
    previous = (body.get("status") or {}).get(STATUS)
    annotation = (body["metadata"].get("annotations") or {}).get(ANNOTATION)
    scheduled = spec.redis.password_rotation.interval_hours > 0
    stored_obj = load_state(names, LAYOUT, live=live, cached=cached,
                            needed=bool(annotation or previous or scheduled))  # fmt: skip
    stored = state_from_secret(stored_obj)
    ready, rolled = _observed(spec, names, stored, secrets, live)
    decision = decide(
        stored,
        spec=spec,
        annotation=annotation if write else None,
        previous=previous,
        current=secrets.redis_passwords,
        ready=ready,
        rolled_out=rolled,
        now=now,
        token=token,
    )
    state = decision.state if write else stored
    out = Handled(secrets=secrets, wake_in=decision.wake_in, events=decision.events)
    if write and state is not None and state != stored:
        failure = persist(kube, body, names, state, LAYOUT)
        if failure is None:
            out.writes += 1
        else:  # nothing acts on an unsaved state: the phase stays
            out.failures.append(("RedisPasswordRotationNotSaved", failure))
            state, out.events = stored, []
            decision.record = record(stored, spec)
    if state is not None and (write or stored_obj is not None):
        out.objects.append(ownership.with_owner(state_secret(names, state), body))
    out.secrets = apply_to(secrets, state)
    if state is not None or decision.record.get("refused") or decision.record.get("message"):
        out.status = {STATUS: decision.record}
    return out
