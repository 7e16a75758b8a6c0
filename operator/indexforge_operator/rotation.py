"""Kong consumer-key rotation with overlap: asked for by annotation or due on a schedule.

    kubectl annotate indexforge/<name> indexforge.io/rotate-keys=all
    kubectl annotate indexforge/<name> indexforge.io/rotate-keys=web,batch:2026-12-02

The value names the consumers (``all`` or a comma-separated list) and may end in
``:<request id>``; like the on-demand backups (on_demand.py) the value is the request's
identity, so re-applying a manifest rotates nothing twice and a new value is a new request.
``spec.gateway.keyAuth.rotation.intervalHours`` rotates every consumer on a schedule.

Kong is DB-less: its pods read kong.yml at start and roll on the config checksum, so a key
is valid only once every Kong pod has restarted with it. No valid request may fail, hence
three phases, each written to the cluster before anything acts on it:

1. ``Issued``: a new key per rotated consumer is generated; kong.yml lists old and new
   (oldest first), the consumers Secret clients read still hands out the old key.
2. ``Published`` (once the gateway Deployment has rolled out that kong.yml completely: every
   pod carries its checksum, none of the old ones is left, all available): the consumers
   Secret hands out the new key; kong.yml is unchanged (same list, same order), so Kong does
   not roll again and the old key stays valid.
3. ``Idle`` after ``gracePeriodSeconds`` (and only once the consumers Secret holds the new
   key): the old key leaves kong.yml and Kong rolls without it.

Where the state lives: the Secret ``<name>-gateway-key-rotation`` (owned by the CR) holds the
phase, request, consumers and times as annotations and the old/new key of each consumer as
data; the reconciler writes it *before* it builds anything from it (write-ahead), so an
operator restarted mid-rotation resumes from it, and a failed write leaves the phase where it
was. It stays after a rotation (phase Idle) as the schedule's baseline and the record of the
last request handled. ``status.keyRotation`` mirrors it without any key; Events say what
happened (KeyRotationStarted, KeyRotated, OldKeyRetired, KeyRotationQueued,
KeyRotationRefused, KeyRotationStuck); the ``KeyRotation`` condition and the
``indexforge_operator_key_rotation_stuck`` gauge report a gateway rollout that does not
finish within ``rolloutTimeoutSeconds`` (the rotation then waits: no client has the new key).

A request arriving while a rotation runs is queued: it stays in the annotation, status names
it, and it starts once the running rotation is Idle. ``decide`` is pure (state, time and
observed rollout in, next state out); ``handle`` is the cluster side.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets as token_source
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

from kubernetes.client.exceptions import ApiException

from indexforge_operator import metrics, ownership
from indexforge_operator.builders.common import CHECKSUM_ANNOTATION, secret
from indexforge_operator.builders.gateway import build_gateway
from indexforge_operator.conditions import Condition
from indexforge_operator.generated import GeneratedSecrets
from indexforge_operator.kube import Kube, error_message
from indexforge_operator.naming import Component, Names
from indexforge_operator.spec import IndexForgeSpec

Obj = dict[str, Any]
Phase = Literal["Idle", "Issued", "Published"]
ANNOTATION = "indexforge.io/rotate-keys"
ALL = "all"
MAX_REQUEST = 253
OLD, NEW = "old", "new"  # data keys <target>.old / <target>.new
CONDITION = "KeyRotation"
SCHEDULE_PREFIX = "schedule@"


def format_time(when: dt.datetime | None) -> str:
    return "" if when is None else when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class State:
    """One instance's rotation. ``consumers``: what rotates (consumers here, Redis instances in
    redis_rotation.py); ``keys`` per target: (old, new). Never log the keys."""

    phase: Phase = "Idle"
    request: str = ""  # running, or the last one that ran when Idle
    handled: str = ""  # the last annotation value that started a rotation (never runs twice)
    consumers: tuple[str, ...] = ()
    started_at: dt.datetime | None = None
    published_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    keys: Mapping[str, tuple[str, str]] = field(default_factory=lambda: MappingProxyType({}))

    def __repr__(self) -> str:
        return f"State(phase={self.phase}, request={self.request!r}, consumers={self.consumers})"

    def retired(self, now: dt.datetime) -> State:
        """Idle after the old keys were dropped: the keys are gone, the history stays."""
        return replace(self, phase="Idle", keys=MappingProxyType({}), completed_at=now)


# --- the Secret the state lives in -----------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where a kind of rotation keeps its state: the Secret's name and its annotation keys."""

    secret_name: Callable[[Names], str]
    component: Component | None
    prefix: str  # of the annotations
    targets: str  # the annotation listing what rotates

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"


GATEWAY = Layout(
    secret_name=lambda names: names.gateway_key_rotation,
    component="gateway",
    prefix="indexforge.io/rotation-",
    targets="consumers",
)
_FIELDS = {"phase": "phase", "request": "request", "handled": "last-annotation",
           "started_at": "started-at", "published_at": "published-at",
           "completed_at": "completed-at"}  # fmt: skip


def state_from_secret(obj: Obj | None, layout: Layout = GATEWAY) -> State | None:
    if obj is None:
        return None
    ann = {f: (obj.get("metadata", {}).get("annotations") or {}).get(layout.key(a), "")
           for f, a in {**_FIELDS, "targets": layout.targets}.items()}  # fmt: skip
    data = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
    targets = tuple(c for c in ann["targets"].split(",") if c)
    keys = {
        c: (data.get(f"{c}.{OLD}", ""), data.get(f"{c}.{NEW}", ""))
        for c in targets
        if data.get(f"{c}.{OLD}") and data.get(f"{c}.{NEW}")
    }
    phase: Phase = "Idle"
    if ann["phase"] == "Issued" and keys:
        phase = "Issued"
    elif ann["phase"] == "Published" and keys:
        phase = "Published"
    else:
        keys = {}
    return State(
        phase=phase,
        request=ann["request"],
        handled=ann["handled"],
        consumers=tuple(c for c in targets if c in keys) if keys else targets,
        started_at=parse_time(ann["started_at"]),
        published_at=parse_time(ann["published_at"]),
        completed_at=parse_time(ann["completed_at"]),
        keys=MappingProxyType(keys),
    )


def state_secret(names: Names, state: State, layout: Layout = GATEWAY) -> Obj:
    """The state as a Secret (operator only: the static chart never rotates)."""
    data: dict[str, str] = {}
    for target, (old, new) in state.keys.items():
        data[f"{target}.{OLD}"], data[f"{target}.{NEW}"] = old, new
    obj = secret(names, layout.component, layout.secret_name(names), data)
    values = {
        "phase": state.phase,
        "request": state.request,
        "handled": state.handled,
        "started_at": format_time(state.started_at),
        "published_at": format_time(state.published_at),
        "completed_at": format_time(state.completed_at),
    }
    annotations = {layout.key(a): values[f] for f, a in _FIELDS.items()}
    annotations[layout.key(layout.targets)] = ",".join(state.consumers)
    obj["metadata"]["annotations"] = dict(sorted(annotations.items()))
    return obj


# --- how a state changes what Kong and clients get -------------------------------------------


def apply_to(secrets: GeneratedSecrets, state: State | None) -> GeneratedSecrets:
    """Published keys (consumers Secret) and accepted keys (kong.yml) under ``state``."""
    if state is None or state.phase == "Idle":
        return secrets
    published = dict(secrets.consumer_keys)
    accepted = dict(secrets.consumer_credentials)
    for consumer, (old, new) in state.keys.items():
        if consumer not in published:
            continue  # removed from the spec meanwhile
        published[consumer] = old if state.phase == "Issued" else new
        accepted[consumer] = (old, new)  # same list in both phases: Kong rolls once
    return replace(
        secrets,
        consumer_keys=MappingProxyType(published),
        consumer_credentials=MappingProxyType(accepted),
    )


def gateway_rolled_out(desired: Obj | None, live: Obj | None) -> bool:
    """Every Kong pod runs the desired config: the live Deployment carries its checksum, the
    controller saw that spec, and all replicas are updated and available with no old one left."""
    if desired is None or live is None:
        return False
    want = desired["spec"]["template"]["metadata"].get("annotations", {}).get(CHECKSUM_ANNOTATION)
    have = (
        live.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations") or {}
    ).get(CHECKSUM_ANNOTATION)
    status = live.get("status") or {}
    if want is None or want != have:
        return False
    if int(status.get("observedGeneration", 0)) < int(live["metadata"].get("generation", 0)):
        return False
    replicas = int(live.get("spec", {}).get("replicas", 1))
    counts = [status.get(k, 0) or 0 for k in ("updatedReplicas", "replicas", "availableReplicas")]
    return all(int(c) == replicas for c in counts)


# --- decisions (pure) ------------------------------------------------------------------------


def request_targets(value: str) -> list[str]:
    """The names an annotation value ``<name[,name...]|all>[:<request id>]`` lists."""
    target = value.rsplit(":", 1)[0] if ":" in value else value
    return [c.strip() for c in target.split(",") if c.strip()]


def parse_request(value: str, known: list[str]) -> tuple[tuple[str, ...], tuple[str, str] | None]:
    """(consumers, None) or ((), (reason, message)) for an annotation value."""
    wanted = request_targets(value)
    if not known:
        return (), ("KeyAuthDisabled", "key rotation needs gateway.enabled and keyAuth.enabled")
    if wanted == [ALL]:
        return tuple(known), None
    unknown = sorted(set(wanted) - set(known))
    if not wanted or unknown:
        return (), (
            "UnknownConsumer",
            f"{ANNOTATION} names no consumer of gateway.keyAuth.consumers: "
            f"{', '.join(unknown)[:200] or value[:100]!r} (known: {', '.join(known)}; or 'all')",
        )
    return tuple(dict.fromkeys(wanted)), None


@dataclass
class Decision:
    state: State | None
    events: list[tuple[str, str, str]] = field(default_factory=list)
    record: Obj = field(default_factory=dict)  # status.keyRotation (no keys)
    condition: Condition | None = None
    stuck: bool = False
    wake_in: float | None = None  # seconds until a deadline needs a pass


def start(
    state: State | None,
    request: str,
    consumers: tuple[str, ...],
    *,
    published: Mapping[str, str],
    now: dt.datetime,
    token: Callable[[], str],
) -> State:
    keys = {c: (published[c], token()) for c in consumers if published.get(c)}
    scheduled = request.startswith(SCHEDULE_PREFIX)
    return State(
        phase="Issued",
        request=request[:MAX_REQUEST],
        handled=(state.handled if state else "") if scheduled else request[:MAX_REQUEST],
        consumers=tuple(keys),
        started_at=now,
        completed_at=state.completed_at if state else None,
        keys=MappingProxyType(keys),
    )


def stored_elsewhere(spec: IndexForgeSpec, what: str = "the consumer keys") -> str | None:
    """Why the operator cannot rotate: the values' source of truth is an external store."""
    provider = spec.secrets.provider
    if provider == "kubernetes":
        return None
    # Vault/External Secrets would read the old value back on the next pass; rotating there
    # needs the overlap written to the store, which is not built (README, rotation).
    return (
        f"secrets.provider is {provider}: {what} live in the external store, "
        "so rotate them there (the operator rotates only what it stores in Secrets)"
    )


@dataclass(frozen=True)
class Request:
    """The annotation as one pass sees it: its value, whether no rotation ran for it yet (nor
    was it refused), and the last status record (which refusal and queue were announced)."""

    value: str | None
    new: bool
    previous: Obj


def read_request(state: State | None, annotation: str | None, previous: Obj | None) -> Request:
    previous = previous or {}
    value = (annotation or "").strip()[:MAX_REQUEST] or None
    handled = {
        state.handled if state else None,
        state.request if state else None,
        previous.get("refused"),
    }
    return Request(value, value is not None and value not in handled, previous)


def take_request(
    state: State | None,
    request: Request,
    *,
    parse: Callable[[str], tuple[tuple[str, ...], str | None]],
    scheduled: tuple[str, ...],
    interval_hours: int,
    published: Mapping[str, str],
    now: dt.datetime,
    token: Callable[[], str],
    record: Obj,
    events: list[tuple[str, str, str]],
    kind: str,
) -> tuple[State | None, str | None, float | None]:
    """An idle rotation starts the request (``parse``: targets or why it is refused) or, when
    due, the schedule (``scheduled`` targets); a running one queues the request. Fills the
    status ``record`` and ``events`` (``<kind>Refused``/``<kind>Queued``); returns
    (state, queued request, seconds until the schedule is due)."""
    value, previous, queued, wake = request.value, request.previous, None, None
    if state is None or state.phase == "Idle":
        if request.new and value is not None:
            targets, refusal = parse(value)
            if refusal is not None:
                record.update(refused=value, message=refusal)
                events.append(("Warning", f"{kind}Refused", f"{value}: {refusal}"))
            else:
                state = start(state, value, targets, published=published, now=now, token=token)
        elif interval_hours > 0:
            baseline = (state.completed_at or state.started_at) if state else None
            if baseline is None:  # first pass with a schedule: the clock starts now
                state = replace(state or State(), completed_at=now)
            elif now >= baseline + dt.timedelta(hours=interval_hours):
                name = f"{SCHEDULE_PREFIX}{format_time(now)}"
                state = start(state, name, scheduled, published=published, now=now, token=token)
            else:
                wake = (baseline + dt.timedelta(hours=interval_hours) - now).total_seconds()
    elif request.new and value is not None:
        queued = value
        if previous.get("queued") != value:
            message = f"{value}: waits for rotation {state.request} to finish"
            events.append(("Normal", f"{kind}Queued", message))
    refused_before = previous.get("refused")
    if refused_before and "refused" not in record and not request.new:
        record.update(refused=refused_before, message=previous.get("message", ""))
    return state, queued, wake


def decide(
    state: State | None,
    *,
    spec: IndexForgeSpec,
    annotation: str | None,
    previous: Obj | None,
    published: Mapping[str, str],
    rolled_out: bool,
    now: dt.datetime,
    token: Callable[[], str],
) -> Decision:
    """The next state from the stored one, the request, the clock and the observed rollout.

    ``published``: the keys the consumers Secret holds now; ``previous``: the last
    status.keyRotation (which refusals and queued requests were already announced)."""
    auth = spec.gateway.key_auth
    known = [c.username for c in auth.consumers] if spec.gateway.enabled and auth.enabled else []
    request = read_request(state, annotation, previous)
    previous, value, new_request = request.previous, request.value, request.new
    out = Decision(state=state)

    elsewhere = stored_elsewhere(spec)
    if not known or elsewhere:
        out.state = None  # nothing to rotate; the state Secret is pruned
        if new_request and value is not None:
            _, refusal = parse_request(value, known)
            message = elsewhere or (refusal[1] if refusal else "")
            out.events.append(("Warning", "KeyRotationRefused", f"{value}: {message}"))
            out.record = {"phase": "Idle", "refused": value, "message": message}
        elif elsewhere and auth.rotation.interval_hours > 0:
            out.record = {"phase": "Idle", "message": f"scheduled rotation off: {elsewhere}"}
        return out

    if state is not None and state.phase != "Idle":
        kept = {c: k for c, k in state.keys.items() if c in known}
        if not kept:  # every rotated consumer was removed from the spec
            state = replace(state, phase="Idle", keys=MappingProxyType({}), completed_at=now)
        elif len(kept) != len(state.keys):
            state = replace(state, keys=MappingProxyType(kept), consumers=tuple(kept))
    rotation = auth.rotation
    if state is not None and state.phase == "Issued":
        if rolled_out:
            state = replace(state, phase="Published", published_at=now)
            retire = now + dt.timedelta(seconds=rotation.grace_period_seconds)
            out.events.append(
                (
                    "Normal",
                    "KeyRotated",
                    f"{state.request}: new key of {', '.join(state.consumers)} "
                    f"published; the old one stays valid until {format_time(retire)}",
                )
            )
        else:
            started = state.started_at or now
            deadline = started + dt.timedelta(seconds=rotation.rollout_timeout_seconds)
            out.stuck = now >= deadline
            out.wake_in = None if out.stuck else (deadline - now).total_seconds()
    elif state is not None and state.phase == "Published":
        retire_at = (state.published_at or now) + dt.timedelta(
            seconds=rotation.grace_period_seconds
        )
        holds_new = all(published.get(c) == new for c, (_, new) in state.keys.items())
        if now >= retire_at and holds_new:
            consumers = state.consumers
            state = state.retired(now)
            out.events.append(
                (
                    "Normal",
                    "OldKeyRetired",
                    f"{state.request}: old key of {', '.join(consumers)} removed from the gateway",
                )
            )
        else:
            out.wake_in = max(1.0, (retire_at - now).total_seconds())

    def parse(value: str) -> tuple[tuple[str, ...], str | None]:
        consumers, refusal = parse_request(value, known)
        return consumers, refusal[1] if refusal else None

    idle = state is None or state.phase == "Idle"
    state, queued, wake = take_request(
        state, request, parse=parse, scheduled=tuple(known),
        interval_hours=rotation.interval_hours, published=published, now=now, token=token,
        record=out.record, events=out.events, kind="KeyRotation",
    )  # fmt: skip
    out.wake_in = wake if idle else out.wake_in
    if idle and state is not None and state.phase == "Issued":
        # A pass by the rollout deadline even if the Deployment stops changing.
        out.wake_in = float(rotation.rollout_timeout_seconds)
        out.events.append(
            (
                "Normal",
                "KeyRotationStarted",
                f"{state.request}: new key issued for "
                f"{', '.join(state.consumers)}; the gateway rolls out with both "
                "keys before clients get the new one",
            )
        )
    out.state = state
    out.record = {**_record(state, spec, queued=queued, stuck=out.stuck), **out.record}
    out.condition = _condition(state, stuck=out.stuck, timeout=rotation.rollout_timeout_seconds)
    if out.stuck and not previous.get("stuck"):
        out.events.append(
            (
                "Warning",
                "KeyRotationStuck",
                f"{state.request if state else ''}: the gateway has not rolled out "
                f"the new key within {rotation.rollout_timeout_seconds}s; clients "
                "keep the old key until it does",
            )
        )
    return out


def _record(state: State | None, spec: IndexForgeSpec, *, queued: str | None, stuck: bool) -> Obj:
    if state is None:
        return {"phase": "Idle"}
    record: Obj = {
        "phase": state.phase,
        "request": state.request,
        "consumers": list(state.consumers),
    }
    for name, when in (
        ("startedAt", state.started_at),
        ("publishedAt", state.published_at),
        ("completedAt", state.completed_at),
    ):
        if when is not None:
            record[name] = format_time(when)
    if state.phase == "Published" and state.published_at is not None:
        grace = spec.gateway.key_auth.rotation.grace_period_seconds
        record["retireAfter"] = format_time(state.published_at + dt.timedelta(seconds=grace))
    if queued:
        record["queued"] = queued
    if stuck:
        record["stuck"] = True
    return record


def _condition(state: State | None, *, stuck: bool, timeout: int) -> Condition | None:
    if state is None:
        return None
    if stuck:
        return Condition(
            CONDITION,
            "False",
            "GatewayRolloutStuck",
            f"{state.request}: the gateway has not rolled out the new key within {timeout}s",
        )
    if state.phase == "Issued":
        return Condition(
            CONDITION,
            "Unknown",
            "KeyIssued",
            f"{state.request}: waiting for the gateway to roll out the new key",
        )
    if state.phase == "Published":
        return Condition(
            CONDITION,
            "Unknown",
            "GracePeriod",
            f"{state.request}: new key published, old key valid until retired",
        )
    return Condition(
        CONDITION, "True", "KeysCurrent", f"no rotation running; last: {state.request or 'none'}"
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


def desired_gateway(spec: IndexForgeSpec, names: Names, secrets: GeneratedSecrets) -> Obj | None:
    if not spec.gateway.enabled:
        return None
    built = build_gateway(spec, names, secrets=secrets)
    return next((o for o in built if o["kind"] == "Deployment"), None)


def load_state(
    names: Names,
    layout: Layout,
    *,
    live: Callable[[Obj], Obj | None],
    cached: Callable[[Obj], Obj | None] | None,
    needed: bool,
) -> Obj | None:
    """The state Secret from the cache; from the server too when a rotation may be involved
    (the cache may not hold our last write yet; without any rotation, ask nothing)."""
    ref = secret(names, layout.component, layout.secret_name(names), {})
    stored = (cached or live)(ref)
    return live(ref) if stored is None and needed else stored


def persist(kube: Kube, body: Obj, names: Names, state: State, layout: Layout) -> str | None:
    """Write the state Secret before anything acts on the state; why not, when it failed."""
    try:
        kube.apply(ownership.with_owner(state_secret(names, state, layout), body))
    except ApiException as exc:
        return f"Secret {layout.secret_name(names)}: {error_message(exc)}"[:1000]
    return None


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
    builders must use. ``live`` answers "live object for this desired one" (cache, then
    server), ``cached`` the cache alone (default: ``live``). ``write`` False (paused): report
    only."""
    previous = (body.get("status") or {}).get("keyRotation")
    annotation = (body["metadata"].get("annotations") or {}).get(ANNOTATION)
    scheduled = spec.gateway.key_auth.rotation.interval_hours > 0
    stored_obj = load_state(names, GATEWAY, live=live, cached=cached,
                            needed=bool(annotation or previous or scheduled))  # fmt: skip
    stored = state_from_secret(stored_obj)
    current = apply_to(secrets, stored)
    rolled = False
    if stored is not None and stored.phase == "Issued":
        deployment = desired_gateway(spec, names, current)
        rolled = deployment is not None and gateway_rolled_out(deployment, live(deployment))
    decision = decide(
        stored,
        spec=spec,
        annotation=annotation if write else None,
        previous=previous,
        published=secrets.consumer_keys,
        rolled_out=rolled,
        now=now,
        token=token,
    )
    state = decision.state if write else stored
    out = Handled(secrets=current, wake_in=decision.wake_in)
    if write and state is not None and state != stored:
        failure = persist(kube, body, names, state, GATEWAY)
        if failure is None:
            out.writes += 1
        else:  # nothing acts on an unsaved state: the phase stays
            out.failures.append(("KeyRotationNotSaved", failure))
            state = stored
            decision = replace(
                decision,
                state=stored,
                events=[],
                record=_record(stored, spec, queued=None, stuck=False),
            )
    if state is not None and (write or stored_obj is not None):
        out.objects.append(ownership.with_owner(state_secret(names, state), body))
    out.secrets = apply_to(secrets, state)
    out.events = decision.events
    if state is not None or decision.record.get("refused"):
        out.status = {"keyRotation": decision.record}
    timeout = spec.gateway.key_auth.rotation.rollout_timeout_seconds
    cond = _condition(state, stuck=decision.stuck and state == decision.state, timeout=timeout)
    if cond is not None:
        out.conditions.append(cond)
    metrics.set_rotation_stuck(namespace=names.namespace, name=names.instance,
                               credential="gateway-key", stuck=decision.stuck)  # fmt: skip
    return out
