"""Redis password rotation (redis_rotation.py): the phases as pure decisions on a fake clock,
then the cluster side pass by pass against an in-memory store (restart = a fresh read).

Unhappy paths first: unknown instances, the replicated state Redis, an external store, a
request while one runs, a repeated annotation, a failed state write."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from types import MappingProxyType
from typing import Any

import pytest
from pydantic import ValidationError

from indexforge_operator import redis_rotation as rr
from indexforge_operator.builders.credentials import internal_auth_data
from indexforge_operator.generated import GeneratedSecrets, complete
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec
from tests.unit import test_rotation as key_rotation_tests
from tests.unit.support import counter_tokens

NAMES = Names("demo", "shop")
T0 = dt.datetime(2026, 12, 3, 0, 0, tzinfo=dt.UTC)
PROPAGATION, GRACE = 150, 600
CURRENT = {"redis-app": "app-0", "redis-ml": "ml-0", "redis-state": "state-0"}


def _spec(**raw: Any) -> IndexForgeSpec:
    rotation = {"propagationSeconds": PROPAGATION, "gracePeriodSeconds": GRACE}
    rotation |= raw.pop("rotation", {})
    return IndexForgeSpec.model_validate(
        {**raw, "redis": {**raw.pop("redis", {}), "passwordRotation": rotation}}
    )


def _decide(
    state: rr.State | None,
    now: dt.datetime,
    annotation: str | None = None,
    *,
    spec: IndexForgeSpec | None = None,
    previous: dict[str, Any] | None = None,
    current: dict[str, str] | None = None,
    ready: bool = True,
    rolled_out: bool = True,
) -> rr.Decision:
    return rr.decide(
        state, spec=spec or _spec(), annotation=annotation, previous=previous,
        current=current or CURRENT, ready=ready, rolled_out=rolled_out, now=now,
        token=counter_tokens("new"),
    )  # fmt: skip


def _s(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def reasons(out: rr.Decision | rr.Handled) -> list[str]:
    return [reason for _, reason, _ in out.events]


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["redis-nope", "redis-app,redis-x:1", ":id", "all,redis-app"])
def test_an_unknown_instance_is_refused_once_with_what_is_known(value: str) -> None:
    out = _decide(None, T0, value)
    assert out.state is None
    assert [(t, r) for t, r, _ in out.events] == [("Warning", "RedisPasswordRotationRefused")]
    assert "redis-app, redis-ml, redis-state" in out.events[0][2]
    assert out.record == {"phase": "Idle", "refused": value, "message": out.record["message"]}
    again = _decide(None, _s(5), value, previous=out.record)
    assert again.events == [] and again.state is None and again.record["refused"] == value


def test_the_replicated_state_redis_is_refused_and_all_skips_it() -> None:
    spec = _spec(redis={"state": {"replication": {"enabled": True}}})
    out = _decide(None, T0, "redis-state", spec=spec)
    assert reasons(out) == ["RedisPasswordRotationRefused"] and out.state is None
    assert "replication" in out.record["message"]
    out = _decide(None, T0, "all", spec=spec)
    assert out.state is not None and out.state.consumers == ("redis-app", "redis-ml")
    assert "redis-state skipped" in out.events[0][2]


@pytest.mark.parametrize("provider", ["vault", "externalSecrets"])
def test_rotation_is_refused_while_an_external_store_holds_the_passwords(provider: str) -> None:
    extra: dict[str, Any] = {"address": "https://vault.example:8200"}
    spec = _spec(secrets={"provider": provider, "vault": extra})
    out = _decide(None, T0, "all", spec=spec)
    assert out.state is None and reasons(out) == ["RedisPasswordRotationRefused"]
    assert f"secrets.provider is {provider}" in out.record["message"]
    assert "Redis passwords" in out.record["message"]


# --- the three phases ------------------------------------------------------------------------


def test_issued_waits_for_propagation_and_ready_redis_then_publishes() -> None:
    out = _decide(None, T0, "redis-app,redis-ml:r1")
    state = out.state
    assert (
        state is not None
        and state.phase == "Issued"
        and reasons(out) == ["RedisPasswordRotationStarted"]
    )
    assert state.consumers == ("redis-app", "redis-ml") and state.handled == "redis-app,redis-ml:r1"
    assert state.keys["redis-app"] == ("app-0", "new1")
    assert out.wake_in == PROPAGATION and out.record["publishAfter"] == "2026-12-03T00:02:30Z"
    base = GeneratedSecrets(redis_passwords=CURRENT)
    issued = rr.apply_to(base, state)
    # Clients keep the old password; the Redis accepts both, newest first.
    assert issued.redis_password("redis-app") == "app-0"
    assert issued.redis_accepted_passwords("redis-app") == ("new1", "app-0")
    assert issued.redis_accepted_passwords("redis-state") == ("state-0",)

    early = _decide(state, _s(PROPAGATION - 1), "redis-app,redis-ml:r1")
    assert early.state == state and early.events == [] and early.wake_in == 1.0
    unready = _decide(state, _s(PROPAGATION), ready=False)
    assert unready.state == state and unready.events == []
    out = _decide(state, _s(PROPAGATION), "redis-app,redis-ml:r1")
    assert out.state is not None and out.state.phase == "Published"
    assert reasons(out) == ["RedisPasswordRotationPublished"]
    published = rr.apply_to(base, out.state)
    assert published.redis_password("redis-app") == "new1"
    assert published.redis_accepted_passwords("redis-app") == ("new1", "app-0")
    assert out.record["retireAfter"] == "2026-12-03T00:12:30Z"


def test_published_retires_after_grace_gateway_rollout_and_the_new_password_stored() -> None:
    state = _decide(None, T0, "redis-app").state
    state = _decide(state, _s(PROPAGATION)).state
    assert state is not None and state.phase == "Published"
    new = {**CURRENT, "redis-app": "new1"}
    at = _s(PROPAGATION + GRACE)
    assert _decide(state, at - dt.timedelta(seconds=1), current=new).state == state
    assert _decide(state, at, current=new, rolled_out=False).state == state
    assert _decide(state, at, current=CURRENT).state == state  # Secret not written yet
    out = _decide(state, at, current=new)
    assert out.state is not None and out.state.phase == "Idle" and out.state.keys == {}
    assert reasons(out) == ["OldRedisPasswordRetired"]
    assert out.state.completed_at == at and out.state.handled == "redis-app"
    retired = rr.apply_to(GeneratedSecrets(redis_passwords=new), out.state)
    assert retired.redis_accepted_passwords("redis-app") == ("new1",)


def test_the_same_annotation_never_rotates_twice_and_a_new_id_does() -> None:
    state = _decide(None, T0, "all").state
    state = _decide(state, _s(PROPAGATION), "all").state
    assert state is not None
    new = {i: n for i, (_, n) in state.keys.items()}
    state = _decide(state, _s(PROPAGATION + GRACE), "all", current=new).state
    assert state is not None and state.phase == "Idle"
    again = _decide(state, _s(PROPAGATION + GRACE + 60), "all", current=new)
    assert again.state == state and again.events == []
    fresh = _decide(state, _s(PROPAGATION + GRACE + 60), "all:2", current=new)
    assert fresh.state is not None and fresh.state.phase == "Issued"


def test_a_request_during_a_rotation_is_queued_then_starts() -> None:
    state = _decide(None, T0, "redis-app").state
    out = _decide(state, _s(10), "redis-ml")
    assert out.state == state and out.record["queued"] == "redis-ml"
    assert reasons(out) == ["RedisPasswordRotationQueued"]
    again = _decide(state, _s(20), "redis-ml", previous=out.record)
    assert again.events == [] and again.record["queued"] == "redis-ml"
    state = _decide(state, _s(PROPAGATION), "redis-ml").state
    new = {**CURRENT, "redis-app": "new1"}
    out = _decide(state, _s(PROPAGATION + GRACE), "redis-ml", current=new)
    assert reasons(out) == ["OldRedisPasswordRetired", "RedisPasswordRotationStarted"]
    assert out.state is not None and out.state.consumers == ("redis-ml",)


def test_the_schedule_starts_its_clock_then_rotates_what_it_can() -> None:
    spec = _spec(rotation={"intervalHours": 24})
    first = _decide(None, T0, spec=spec)
    assert first.state is not None and first.state.phase == "Idle" and first.events == []
    later = _decide(first.state, T0 + dt.timedelta(hours=23), spec=spec)
    assert later.state == first.state and later.wake_in == 3600
    due = _decide(first.state, T0 + dt.timedelta(hours=24), spec=spec)
    assert due.state is not None and due.state.phase == "Issued"
    assert due.state.request.startswith("schedule@") and due.state.handled == ""
    assert due.state.consumers == ("redis-app", "redis-ml", "redis-state")


def test_bounds_are_enforced_by_the_spec() -> None:
    with pytest.raises(ValidationError):
        _spec(rotation={"propagationSeconds": 1})
    with pytest.raises(ValidationError):
        _spec(rotation={"gracePeriodSeconds": 0})


# --- cluster side: write-ahead, restart, failed write ----------------------------------------


class Cluster(key_rotation_tests.Cluster):
    """The state Secret, the internal-auth Secret and the Redis StatefulSets."""

    def ready_redis(self) -> None:
        for instance in CURRENT:
            name = NAMES.component(instance)  # type: ignore[arg-type]
            self.objects[("StatefulSet", name)] = {
                "kind": "StatefulSet", "metadata": {"name": name, "generation": 1},
                "spec": {"replicas": 1},
                "status": {"observedGeneration": 1, "readyReplicas": 1, "updatedReplicas": 1,
                           "replicas": 1},
            }  # fmt: skip


def _body(annotation: str | None, status: dict[str, Any]) -> dict[str, Any]:
    ann = {rr.ANNOTATION: annotation} if annotation else {}
    meta = {"name": "demo", "namespace": "shop", "uid": "u1", "annotations": ann}
    return {"apiVersion": "indexforge.io/v1alpha1", "kind": "IndexForge", "metadata": meta,
            "status": status}  # fmt: skip


def _pass(
    cluster: Cluster, spec: IndexForgeSpec, secrets: GeneratedSecrets, now: dt.datetime,
    annotation: str | None, status: dict[str, Any],
) -> tuple[rr.Handled, GeneratedSecrets]:  # fmt: skip
    """One reconcile: handle, then "apply" the internal-auth Secret built from its result."""
    out = rr.handle(
        cluster, _body(annotation, status), spec, NAMES, live=cluster.get,  # type: ignore[arg-type]
        secrets=secrets, now=now, write=True, token=counter_tokens("new"),
    )  # fmt: skip
    data = internal_auth_data(NAMES, out.secrets)
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    if not cluster.fail_writes:
        secret = {"kind": "Secret", "metadata": {"name": NAMES.internal_auth}, "data": encoded}
        cluster.objects[("Secret", NAMES.internal_auth)] = secret
    status |= out.status
    if cluster.fail_writes:
        return out, secrets
    # What the next pass reads back: clients' passwords as the Secret holds them.
    stored = {i: out.secrets.redis_password(i) for i in CURRENT}
    return out, dataclasses.replace(secrets, redis_passwords=MappingProxyType(stored))


def test_handle_writes_ahead_and_a_restarted_operator_resumes() -> None:
    spec, cluster, status = _spec(), Cluster(), {}
    secrets = complete(spec, current=GeneratedSecrets(), token=counter_tokens("old"))
    old = secrets.redis_password("redis-app")
    out, secrets = _pass(cluster, spec, secrets, T0, "redis-app", status)
    assert reasons(out) == ["RedisPasswordRotationStarted"] and cluster.writes == 1
    stored = rr.state_from_secret(cluster.objects[("Secret", NAMES.redis_password_rotation)])
    assert stored is not None and stored.phase == "Issued"
    assert stored.keys["redis-app"] == (old, "new1")
    assert status["redisPasswordRotation"]["phase"] == "Issued"
    assert "new1" not in str(status) and old not in str(status)
    # A new operator process: only the cluster is left. Redis not ready yet: waits.
    out, secrets = _pass(cluster, spec, secrets, _s(PROPAGATION), "redis-app", status)
    assert out.events == [] and secrets.redis_password("redis-app") == old
    cluster.ready_redis()
    out, secrets = _pass(cluster, spec, secrets, _s(PROPAGATION), "redis-app", status)
    assert reasons(out) == ["RedisPasswordRotationPublished"]
    assert secrets.redis_password("redis-app") == "new1"
    # gateway on by default: its Deployment never rolled out here, so no retirement.
    out, secrets = _pass(cluster, spec, secrets, _s(PROPAGATION + GRACE), "redis-app", status)
    assert out.events == [] and status["redisPasswordRotation"]["phase"] == "Published"


def test_a_failed_state_write_changes_nothing() -> None:
    spec, cluster, status = _spec(), Cluster(fail_writes=True), {}
    secrets = complete(spec, current=GeneratedSecrets(), token=counter_tokens("old"))
    out, _ = _pass(cluster, spec, secrets, T0, "all", status)
    assert out.events == [] and [r for r, _ in out.failures] == ["RedisPasswordRotationNotSaved"]
    assert out.secrets.redis_accepted == {} and out.objects == []


def test_paused_or_unreadable_store_reports_only() -> None:
    spec, cluster = _spec(), Cluster()
    secrets = complete(spec, current=GeneratedSecrets(), token=counter_tokens("old"))
    out = rr.handle(
        cluster, _body("all", {}), spec, NAMES, live=cluster.get,  # type: ignore[arg-type]
        secrets=secrets, now=T0, write=False,
    )  # fmt: skip
    assert cluster.writes == 0 and out.events == [] and out.secrets == secrets


def test_without_a_gateway_the_rotation_ends_with_only_the_new_password_accepted() -> None:
    spec, cluster, status = _spec(gateway={"enabled": False}), Cluster(), {}
    cluster.ready_redis()
    secrets = complete(spec, current=GeneratedSecrets(), token=counter_tokens("old"))
    old = secrets.redis_password("redis-ml")
    seen = []
    for at in (0, PROPAGATION, PROPAGATION + GRACE, PROPAGATION + GRACE + 30):
        out, secrets = _pass(cluster, spec, secrets, _s(at), "redis-ml:x", status)
        seen += reasons(out)
        listed = base64.b64decode(
            cluster.objects[("Secret", NAMES.internal_auth)]["data"]["redis-ml-passwords"]
        ).decode()
        if at == 0:
            assert listed == f"new1\n{old}\n"
    assert seen == [
        "RedisPasswordRotationStarted",
        "RedisPasswordRotationPublished",
        "OldRedisPasswordRetired",
    ]
    assert listed == "new1\n" and secrets.redis_password("redis-ml") == "new1"
    assert status["redisPasswordRotation"]["phase"] == "Idle"
