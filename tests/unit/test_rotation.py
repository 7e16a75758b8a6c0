"""Kong consumer-key rotation (rotation.py): the phases as pure decisions, then the cluster
side driven pass by pass against an in-memory store (restart = a fresh read of the store).

Unhappy paths first: unknown consumers, key-auth off, a second request while one runs, a
failed state write, a rollout that never completes, admission bounds."""

from __future__ import annotations

import base64
import copy
import datetime as dt
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from indexforge_operator import metrics, rotation
from indexforge_operator.builders.gateway import build_gateway
from indexforge_operator.generated import GeneratedSecrets, complete
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec
from tests.charts import kong_schema
from tests.unit.support import counter_tokens

NAMES = Names("demo", "shop")
T0 = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
GRACE = 600


def _spec(consumers: tuple[str, ...] = ("web", "batch"), **rot: Any) -> IndexForgeSpec:
    return IndexForgeSpec.model_validate(
        {
            "gateway": {
                "keyAuth": {
                    "consumers": [{"username": c} for c in consumers],
                    "rotation": {"gracePeriodSeconds": GRACE, "rolloutTimeoutSeconds": 300, **rot},
                }
            }
        }
    )


def _secrets(spec: IndexForgeSpec) -> GeneratedSecrets:
    return complete(spec, current=GeneratedSecrets(), token=counter_tokens("old"))


class Cluster:
    """What the handler reads and writes: the rotation Secret, the consumers Secret and the
    gateway Deployment (whose rollout the test completes or not)."""

    def __init__(self, *, fail_writes: bool = False) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.fail_writes = fail_writes
        self.writes = 0

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        if self.fail_writes:
            raise ApiException(status=500, reason="etcd unavailable")
        self.writes += 1
        self.objects[(obj["kind"], obj["metadata"]["name"])] = copy.deepcopy(obj)
        return obj

    def get(self, ref: dict[str, Any]) -> Any:
        return copy.deepcopy(self.objects.get((ref["kind"], ref["metadata"]["name"])))

    def roll_gateway(self, deployment: dict[str, Any], *, complete: bool = True) -> None:
        live = copy.deepcopy(deployment)
        live["metadata"]["generation"] = 2
        n = live["spec"]["replicas"]
        done = n if complete else n - 1
        live["status"] = {"observedGeneration": 2, "replicas": n + (0 if complete else 1),
                          "updatedReplicas": done, "availableReplicas": n}  # fmt: skip
        self.objects[("Deployment", live["metadata"]["name"])] = live


def _body(annotation: str | None = None, status: dict[str, Any] | None = None) -> dict[str, Any]:
    ann = {rotation.ANNOTATION: annotation} if annotation else {}
    meta = {"name": "demo", "namespace": "shop", "uid": "u1", "annotations": ann}
    return {"apiVersion": "indexforge.io/v1alpha1", "kind": "IndexForge", "metadata": meta,
            "status": status or {}}  # fmt: skip


class Harness:
    """One instance through successive passes, the way the reconciler calls ``handle``: the
    consumers Secret is "applied" from what the builders get, the gateway Deployment is
    built from it and rolled (or not) by the test."""

    def __init__(self, spec: IndexForgeSpec, cluster: Cluster | None = None) -> None:
        self.spec, self.cluster = spec, cluster or Cluster()
        self.base = _secrets(spec)
        self.status: dict[str, Any] = {}
        self.tokens = counter_tokens("new")
        self.published = dict(self.base.consumer_keys)  # the consumers Secret
        self.kong_keys: dict[str, list[str]] = {}
        self.deployment: dict[str, Any] = {}

    def run(self, now: dt.datetime, annotation: str | None = None, *, write: bool = True
            ) -> rotation.Handled:  # fmt: skip
        secrets = GeneratedSecrets(consumer_keys=dict(self.published),
                                   gateway_tokens=self.base.gateway_tokens,
                                   redis_passwords=self.base.redis_passwords)  # fmt: skip
        out = rotation.handle(
            self.cluster, _body(annotation, self.status), self.spec, NAMES,  # type: ignore[arg-type]
            live=self.cluster.get, secrets=secrets, now=now, write=write, token=self.tokens,
        )  # fmt: skip
        self.status = {**self.status, **out.status}
        self.published = dict(out.secrets.consumer_keys)
        built = build_gateway(self.spec, NAMES, secrets=out.secrets)
        self.deployment = next(o for o in built if o["kind"] == "Deployment")
        config = next(o for o in built if o["metadata"]["name"] == NAMES.config("gateway"))
        kong = yaml.safe_load(base64.b64decode(config["data"]["kong.yml"]))
        self.kong = kong
        self.kong_keys = {c["username"]: [k["key"] for k in c["keyauth_credentials"]]
                          for c in kong["consumers"]}  # fmt: skip
        return out


def reasons(out: rotation.Handled) -> list[str]:
    return [reason for _, reason, _ in out.events]


# --- refusals --------------------------------------------------------------------------------


def test_unknown_consumer_is_refused_with_a_warning_and_nothing_changes() -> None:
    h = Harness(_spec())
    before = dict(h.published)
    out = h.run(T0, "web,nobody")
    assert [(t, r) for t, r, _ in out.events] == [("Warning", "KeyRotationRefused")]
    assert "nobody" in out.events[0][2] and "web, batch" in out.events[0][2]
    assert h.cluster.writes == 0 and out.objects == []
    assert h.published == before and h.kong_keys == {c: [k] for c, k in before.items()}
    assert h.status["keyRotation"]["refused"] == "web,nobody"
    # The same value again: no second Event, still nothing written.
    again = h.run(T0 + dt.timedelta(seconds=5), "web,nobody")
    assert again.events == [] and h.cluster.writes == 0


def test_rotation_needs_key_auth() -> None:
    spec = IndexForgeSpec.model_validate({"gateway": {"keyAuth": {"enabled": False}}})
    out = rotation.decide(None, spec=spec, annotation="all", previous=None, published={},
                          rolled_out=False, now=T0, token=counter_tokens())  # fmt: skip
    assert out.state is None and [r for _, r, _ in out.events] == ["KeyRotationRefused"]
    assert "keyAuth.enabled" in out.events[0][2]


@pytest.mark.parametrize("grace", [0, -5])
def test_grace_period_zero_or_negative_is_rejected(grace: int) -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        _spec(gracePeriodSeconds=grace)


def test_crd_bounds_the_grace_period_for_admission() -> None:
    from tests.conftest import CRD_FILE

    crd = yaml.safe_load(CRD_FILE.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    key_auth = schema["properties"]["spec"]["properties"]["gateway"]["properties"]["keyAuth"]
    rot = key_auth["properties"]["rotation"]["properties"]
    assert rot["gracePeriodSeconds"]["minimum"] == 1
    assert rot["intervalHours"]["minimum"] == 0
    assert rot["rolloutTimeoutSeconds"]["minimum"] == 30


def test_failed_state_write_leaves_the_phase_and_the_keys_alone() -> None:
    h = Harness(_spec(), Cluster(fail_writes=True))
    before = dict(h.published)
    out = h.run(T0, "all")
    assert [r for r, _ in out.failures] == ["KeyRotationNotSaved"]
    assert out.events == [] and h.published == before
    assert h.kong_keys == {c: [k] for c, k in before.items()}  # no unsaved key reaches Kong


# --- the phases ------------------------------------------------------------------------------


def test_full_rotation_overlaps_keys_in_the_safe_order() -> None:
    h = Harness(_spec())
    old = dict(h.published)
    started = h.run(T0, "web")
    assert reasons(started) == ["KeyRotationStarted"]
    # 1. Kong accepts old and new; clients still read the old key.
    new = h.kong_keys["web"][1]
    assert h.kong_keys == {"web": [old["web"], new], "batch": [old["batch"]]}
    assert h.published == old
    assert h.status["keyRotation"]["phase"] == "Issued"
    assert "new" not in str(h.status) and old["web"] not in str(h.status)  # no key in status
    issued_checksum = h.deployment["spec"]["template"]["metadata"]["annotations"]

    # Not rolled out yet (one old pod left): nothing is published.
    h.cluster.roll_gateway(h.deployment, complete=False)
    waiting = h.run(T0 + dt.timedelta(seconds=30))
    assert waiting.events == [] and h.published == old
    assert waiting.wake_in == pytest.approx(270)

    # 2. Rolled out: the consumers Secret gets the new key; kong.yml is unchanged (no roll).
    h.cluster.roll_gateway(h.deployment)
    published = h.run(T0 + dt.timedelta(seconds=60))
    assert reasons(published) == ["KeyRotated"]
    assert h.published == {"web": new, "batch": old["batch"]}
    assert h.kong_keys["web"] == [old["web"], new]
    assert h.deployment["spec"]["template"]["metadata"]["annotations"] == issued_checksum
    assert h.status["keyRotation"]["retireAfter"] == "2026-12-02T12:11:00Z"

    # Inside the grace period the old key stays.
    inside = h.run(T0 + dt.timedelta(seconds=60 + GRACE - 1))
    assert inside.events == [] and h.kong_keys["web"] == [old["web"], new]
    assert inside.wake_in == pytest.approx(1)

    # 3. Grace period over: the old key leaves Kong.
    retired = h.run(T0 + dt.timedelta(seconds=60 + GRACE))
    assert reasons(retired) == ["OldKeyRetired"]
    assert h.kong_keys == {"web": [new], "batch": [old["batch"]]}
    assert h.published == {"web": new, "batch": old["batch"]}
    assert h.status["keyRotation"]["phase"] == "Idle"
    cond = {c.type: c for c in retired.conditions}["KeyRotation"]
    assert (cond.status, cond.reason) == ("True", "KeysCurrent")
    # The stored Secret keeps no key once Idle, and the value never runs twice.
    stored = h.cluster.objects[("Secret", NAMES.gateway_key_rotation)]
    assert stored["data"] == {}
    later = h.run(T0 + dt.timedelta(days=3), "web")
    assert later.events == [] and h.kong_keys["web"] == [new]


def test_kong_config_with_two_keys_passes_kongs_schema() -> None:
    h = Harness(_spec())
    h.run(T0, "all")
    assert all(len(keys) == 2 for keys in h.kong_keys.values())
    assert kong_schema.problems(h.kong) == []


def test_an_operator_restart_mid_rotation_resumes_from_the_stored_state() -> None:
    spec = _spec()
    first = Harness(spec)
    first.run(T0, "all")
    first.cluster.roll_gateway(first.deployment)
    first.run(T0 + dt.timedelta(seconds=10))
    assert first.status["keyRotation"]["phase"] == "Published"
    keys = copy.deepcopy(first.kong_keys)

    # A new operator process: nothing in memory, no status (lost), only the cluster.
    restarted = Harness(spec, first.cluster)
    restarted.published = dict(first.published)
    out = restarted.run(T0 + dt.timedelta(seconds=20))
    assert out.events == [] and restarted.kong_keys == keys  # same keys, no new ones
    assert restarted.status["keyRotation"]["phase"] == "Published"
    done = restarted.run(T0 + dt.timedelta(seconds=10 + GRACE))
    assert reasons(done) == ["OldKeyRetired"]
    assert restarted.kong_keys == {c: [k[1]] for c, k in keys.items()}


def test_restart_in_issued_phase_keeps_the_issued_key() -> None:
    spec = _spec()
    first = Harness(spec)
    first.run(T0, "all")
    issued = copy.deepcopy(first.kong_keys)
    again = Harness(spec, first.cluster)
    again.published = dict(first.published)
    again.run(T0 + dt.timedelta(seconds=5), "all")  # the annotation is still there
    assert again.kong_keys == issued


def test_a_second_request_during_a_rotation_is_queued_then_runs() -> None:
    h = Harness(_spec())
    h.run(T0, "web")
    queued = h.run(T0 + dt.timedelta(seconds=1), "batch")
    assert [(t, r) for t, r, _ in queued.events] == [("Normal", "KeyRotationQueued")]
    assert h.status["keyRotation"]["queued"] == "batch"
    assert h.status["keyRotation"]["request"] == "web"
    assert h.run(T0 + dt.timedelta(seconds=2), "batch").events == []  # announced once
    h.cluster.roll_gateway(h.deployment)
    h.run(T0 + dt.timedelta(seconds=3), "batch")
    # The queued request starts in the pass that retires the running one's old key: one
    # gateway rollout drops web's old key and adds batch's new one.
    retired = h.run(T0 + dt.timedelta(seconds=3 + GRACE), "batch")
    assert reasons(retired) == ["OldKeyRetired", "KeyRotationStarted"]
    assert len(h.kong_keys["web"]) == 1 and len(h.kong_keys["batch"]) == 2
    assert h.status["keyRotation"]["request"] == "batch"
    assert "queued" not in h.status["keyRotation"]
    assert h.run(T0 + dt.timedelta(seconds=4 + GRACE), "batch").events == []


def test_a_rollout_that_never_completes_is_reported_stuck_once() -> None:
    h = Harness(_spec())
    h.run(T0, "all")
    h.cluster.roll_gateway(h.deployment, complete=False)
    old = dict(h.published)
    stuck = h.run(T0 + dt.timedelta(seconds=300))
    assert [(t, r) for t, r, _ in stuck.events] == [("Warning", "KeyRotationStuck")]
    cond = {c.type: c for c in stuck.conditions}["KeyRotation"]
    assert (cond.status, cond.reason) == ("False", "GatewayRolloutStuck")
    assert h.status["keyRotation"]["stuck"] is True
    gauge = metrics.KEY_ROTATION_STUCK.labels("shop", "demo", "gateway-key")
    assert gauge._value.get() == 1
    assert h.published == old  # clients keep the old key: nothing fails
    assert h.run(T0 + dt.timedelta(seconds=400)).events == []
    h.cluster.roll_gateway(h.deployment)
    assert reasons(h.run(T0 + dt.timedelta(seconds=500))) == ["KeyRotated"]
    assert gauge._value.get() == 0


def test_rollout_check_wants_the_new_checksum_on_every_replica() -> None:
    h = Harness(_spec())
    h.run(T0, "all")
    live = copy.deepcopy(h.deployment)
    live["metadata"]["generation"] = 3
    live["status"] = {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2,
                      "availableReplicas": 2}  # fmt: skip
    assert rotation.gateway_rolled_out(h.deployment, live)
    stale = copy.deepcopy(live)
    stale["status"]["observedGeneration"] = 2
    assert not rotation.gateway_rolled_out(h.deployment, stale)
    other = copy.deepcopy(live)
    other["spec"]["template"]["metadata"]["annotations"] = {"indexforge.io/config-checksum": "x"}
    assert not rotation.gateway_rolled_out(h.deployment, other)
    unavailable = copy.deepcopy(live)
    unavailable["status"]["availableReplicas"] = 1
    assert not rotation.gateway_rolled_out(h.deployment, unavailable)
    assert not rotation.gateway_rolled_out(h.deployment, None)


def test_schedule_starts_the_clock_then_rotates_every_consumer_when_due() -> None:
    h = Harness(_spec(intervalHours=24))
    first = h.run(T0)
    assert first.events == [] and first.wake_in is None
    assert h.status["keyRotation"]["completedAt"] == "2026-12-02T12:00:00Z"
    waiting = h.run(T0 + dt.timedelta(hours=1))
    assert waiting.events == [] and waiting.wake_in == pytest.approx(23 * 3600)
    due = h.run(T0 + dt.timedelta(hours=24))
    assert reasons(due) == ["KeyRotationStarted"]
    assert h.status["keyRotation"]["request"] == "schedule@2026-12-03T12:00:00Z"
    assert all(len(k) == 2 for k in h.kong_keys.values())


def test_scheduled_rotation_does_not_rerun_an_old_annotation() -> None:
    h = Harness(_spec(intervalHours=1))
    h.run(T0, "web")
    h.cluster.roll_gateway(h.deployment)
    h.run(T0 + dt.timedelta(seconds=1), "web")
    h.run(T0 + dt.timedelta(seconds=1 + GRACE), "web")
    scheduled = h.run(T0 + dt.timedelta(hours=2), "web")
    assert h.status["keyRotation"]["request"].startswith("schedule@")
    h.cluster.roll_gateway(h.deployment)
    h.run(T0 + dt.timedelta(hours=2, seconds=1), "web")
    h.run(T0 + dt.timedelta(hours=2, seconds=1 + GRACE), "web")
    after = h.run(T0 + dt.timedelta(hours=2, seconds=2 + GRACE), "web")
    assert reasons(scheduled) == ["KeyRotationStarted"] and after.events == []


def test_a_consumer_removed_mid_rotation_leaves_the_rotation() -> None:
    h = Harness(_spec())
    h.run(T0, "all")
    h.spec = _spec(consumers=("web",))
    h.published.pop("batch")
    h.run(T0 + dt.timedelta(seconds=1))
    assert set(h.kong_keys) == {"web"} and len(h.kong_keys["web"]) == 2
    assert h.status["keyRotation"]["consumers"] == ["web"]


def test_paused_instance_reports_but_does_not_advance() -> None:
    h = Harness(_spec())
    out = h.run(T0, "all", write=False)
    assert h.cluster.writes == 0 and out.events == []


def test_state_repr_hides_keys() -> None:
    state = rotation.State(phase="Issued", keys={"web": ("secret-old", "secret-new")})
    assert "secret" not in repr(state)


# --- through a whole reconcile pass ----------------------------------------------------------


def test_reconcile_pass_issues_then_sends_nothing_while_waiting() -> None:
    from indexforge_operator.reconciler import reconcile
    from tests.unit.test_reconciler import UID, MemoryApi

    api = MemoryApi()
    cr = {"apiVersion": "indexforge.io/v1alpha1", "kind": "IndexForge",
          "metadata": {"name": "x", "namespace": "ns", "uid": UID, "generation": 1},
          "spec": {"monitoring": {"enabled": False}}}  # fmt: skip
    first = reconcile(
        api, cr, view=api.view(), prometheus_operator=False, now="2026-12-02T12:00:00Z"
    )  # type: ignore[arg-type]
    consumers = copy.deepcopy(api.objects[("Secret", "x-gateway-consumers")]["data"])
    assert ("Secret", "x-gateway-key-rotation") not in api.objects  # no rotation, no Secret

    cr["metadata"]["annotations"] = {rotation.ANNOTATION: "all"}
    cr["status"] = first.status
    issued = reconcile(
        api, cr, view=api.view(), prometheus_operator=False, now="2026-12-02T12:01:00Z"
    )  # type: ignore[arg-type]
    assert "KeyRotationStarted" in [r for _, r, _ in issued.events]
    assert issued.status is not None and issued.status["keyRotation"]["phase"] == "Issued"
    assert api.objects[("Secret", "x-gateway-consumers")]["data"] == consumers  # still the old
    kong_secret = api.objects[("Secret", "x-gateway-config")]["data"]["kong.yml"]
    kong = yaml.safe_load(base64.b64decode(kong_secret))
    assert [len(c["keyauth_credentials"]) for c in kong["consumers"]] == [2]
    assert issued.requeue_after == pytest.approx(900)  # the rollout timeout

    # The Deployment has not rolled (no status): the next pass changes nothing.
    cr["status"] = issued.status
    api.calls.clear()
    again = reconcile(
        api, cr, view=api.view(), prometheus_operator=False, now="2026-12-02T12:02:00Z"
    )  # type: ignore[arg-type]
    assert again.writes == 0 and again.events == [], (api.calls, again.events)
    assert [c for c in api.calls if c.startswith("APPLY")] == []


def test_the_rotate_keys_annotation_triggers_a_pass() -> None:
    """Annotations are not in metadata.generation: without this a request waited for an
    unrelated pass (found by tests/integration/test_key_rotation.py)."""
    from indexforge_operator.handlers import _trigger

    body: dict[str, Any] = {"metadata": {"generation": 1, "uid": "u", "annotations": {}}}
    before = _trigger(body)
    body["metadata"]["annotations"] = {rotation.ANNOTATION: "all"}
    assert _trigger(body) != before
    body["metadata"]["annotations"] = {"unrelated.example/note": "x"}
    assert _trigger(body) == before


@pytest.mark.parametrize("provider", ["vault", "externalSecrets"])
def test_rotation_is_refused_when_the_keys_live_in_an_external_store(provider: str) -> None:
    """Vault/External Secrets hold the keys: a rotation here would be read back as the old
    key on the next pass, so the request is refused with the reason and nothing starts."""
    data = _spec(intervalHours=24).model_dump(by_alias=True, exclude_none=True)
    data["secrets"] = {"provider": provider, "vault": {"address": "http://vault:8200"}}
    spec = IndexForgeSpec.model_validate(data)
    published = dict(_secrets(spec).consumer_keys)
    requested = rotation.decide(None, spec=spec, annotation="all", previous=None,
                                published=published, rolled_out=False, now=T0,
                                token=counter_tokens())  # fmt: skip
    assert requested.state is None
    assert requested.record["refused"] == "all"
    assert f"secrets.provider is {provider}" in requested.record["message"]
    assert [r for _, r, _ in requested.events] == ["KeyRotationRefused"]
    scheduled = rotation.decide(None, spec=spec, annotation=None, previous=None,
                                published=published, rolled_out=False, now=T0,
                                token=counter_tokens())  # fmt: skip
    assert scheduled.state is None and not scheduled.events
    assert scheduled.record["message"].startswith("scheduled rotation off")
