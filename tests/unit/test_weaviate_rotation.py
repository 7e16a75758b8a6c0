"""Weaviate API-key rotation (weaviate_rotation.py): the phases as pure decisions on a fake
clock, the builders' wiring, then the cluster side pass by pass against an in-memory store
(restart = a fresh read).

Unhappy paths first: an external store, a restart that would be an outage, a garbled key
(list), a hand-edited state Secret, a request while one runs, a repeated annotation, a failed
state write, a rollout that never finishes."""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from indexforge_operator import metrics
from indexforge_operator import weaviate_rotation as wr
from indexforge_operator.builders import build_all
from indexforge_operator.builders.credentials import internal_auth_data
from indexforge_operator.generated import GeneratedSecrets, complete, weaviate_keys_value
from indexforge_operator.naming import Names
from indexforge_operator.rotation import State
from indexforge_operator.spec import IndexForgeSpec
from tests.unit import test_rotation as key_rotation_tests
from tests.unit.support import counter_tokens

NAMES = Names("demo", "shop")
T0 = dt.datetime(2026, 12, 3, 0, 0, tzinfo=dt.UTC)
GRACE, TIMEOUT = 600, 1800
HA = {"replicas": 3}  # replication factor min(3, 3): a restart keeps every quorum


def _spec(**raw: Any) -> IndexForgeSpec:
    rotation = {"gracePeriodSeconds": GRACE, "rolloutTimeoutSeconds": TIMEOUT}
    rotation |= raw.pop("rotation", {})
    weaviate = {**HA, **raw.pop("weaviate", {}), "keyRotation": rotation}
    return IndexForgeSpec.model_validate({**raw, "weaviate": weaviate})


def _decide(
    state: State | None,
    now: dt.datetime,
    annotation: str | None = None,
    *,
    spec: IndexForgeSpec | None = None,
    previous: dict[str, Any] | None = None,
    current: str = "old",
    rolled: bool = True,
) -> wr.Decision:
    return wr.decide(
        state, spec=spec or _spec(), annotation=annotation, previous=previous,
        current=current, rolled=rolled, now=now, token=counter_tokens("new"),
    )  # fmt: skip


def _s(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def reasons(out: wr.Decision | wr.Handled) -> list[str]:
    return [reason for _, reason, _ in out.events]


def _allowed_ref(objs: list[dict[str, Any]]) -> str:
    sts = next(o for o in objs if o["kind"] == "StatefulSet" and o["metadata"]["name"].endswith(
        "-weaviate"))  # fmt: skip
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    (var,) = [e for e in container["env"] if e["name"] == "AUTHENTICATION_APIKEY_ALLOWED_KEYS"]
    return str(var["valueFrom"]["secretKeyRef"]["key"])


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["vault", "externalSecrets"])
def test_rotation_is_refused_while_an_external_store_holds_the_key(provider: str) -> None:
    extra: dict[str, Any] = {"address": "https://vault.example:8200"}
    spec = _spec(secrets={"provider": provider, "vault": extra})
    out = _decide(None, T0, "r1", spec=spec)
    assert out.state is None and reasons(out) == ["WeaviateKeyRotationRefused"]
    assert f"secrets.provider is {provider}" in out.record["message"]
    assert "Weaviate API key" in out.record["message"]
    again = _decide(None, _s(5), "r1", spec=spec, previous=out.record)
    assert again.events == [] and again.record["refused"] == "r1"


@pytest.mark.parametrize(
    ("weaviate", "factor"), [({"replicas": 1}, 1), ({"replicas": 2}, 2),
                             ({"replicas": 5, "replicationFactor": 2}, 2)],
)  # fmt: skip
def test_a_restart_that_would_be_an_outage_is_refused_unless_allowed(
    weaviate: dict[str, Any], factor: int
) -> None:
    spec = _spec(weaviate=weaviate)
    out = _decide(None, T0, "r1", spec=spec)
    assert out.state is None and reasons(out) == ["WeaviateKeyRotationRefused"]
    message = out.record["message"]
    assert f"replication factor {factor}" in message and "allowRestartOutage" in message
    # The schedule does not start it either, and says why.
    scheduled = _spec(weaviate=weaviate, rotation={"intervalHours": 1})
    out = _decide(State(completed_at=T0), _s(7200), spec=scheduled)
    assert out.events == [] and out.record["message"].startswith("scheduled rotation off:")
    assert out.state is not None and out.state.phase == "Idle"
    # Accepted explicitly: it runs (a short outage per restart).
    allowed = _spec(weaviate=weaviate, rotation={"allowRestartOutage": True})
    out = _decide(None, T0, "r1", spec=allowed)
    assert out.state is not None and out.state.phase == "Issued"


@pytest.mark.parametrize("garbled", ["a,b", "with space", " lead", ""])
def test_a_key_weaviate_would_misread_in_its_list_is_refused(garbled: str) -> None:
    with pytest.raises(ValueError, match="Weaviate"):
        weaviate_keys_value(("new1", garbled))
    if garbled:  # a stored key that cannot be listed: the request is refused, nothing starts
        out = _decide(None, T0, "r1", current=garbled)
        assert out.state is None and reasons(out) == ["WeaviateKeyRotationRefused"]
        assert "cannot be listed" in out.record["message"]
    with pytest.raises(ValueError, match="twice"):
        weaviate_keys_value(("k", "k"))
    assert weaviate_keys_value(("new1", "old")) == "new1,old"


def test_a_hand_edited_state_secret_is_discarded_not_acted_on() -> None:
    bad = wr.state_secret(NAMES, State(phase="Issued", consumers=("weaviate",), started_at=T0,
                                       keys={"weaviate": ("old", "x,y")}))  # fmt: skip
    assert wr.state_from_secret(bad) is None
    other = wr.state_secret(NAMES, State(phase="Issued", consumers=("redis-app",), started_at=T0,
                                         keys={"redis-app": ("a", "b")}))  # fmt: skip
    assert wr.state_from_secret(other) is None


# --- the three phases ------------------------------------------------------------------------


def test_issued_rolls_weaviate_to_both_keys_and_publishes_only_once_rolled_out() -> None:
    out = _decide(None, T0, "r1")
    state = out.state
    assert state is not None and state.phase == "Issued"
    assert reasons(out) == ["WeaviateKeyRotationStarted"]
    assert state.keys["weaviate"] == ("old", "new1") and state.handled == "r1"
    assert out.wake_in == TIMEOUT and "new1" not in str(out.record) + str(out.events)
    issued = wr.apply_to(GeneratedSecrets(weaviate_api_key="old"), state)
    assert issued.weaviate_api_key == "old"  # clients keep the old key
    assert issued.weaviate_accepted == ("new1", "old")

    waiting = _decide(state, _s(60), "r1", rolled=False)
    assert waiting.state == state and waiting.events == [] and waiting.wake_in == TIMEOUT - 60
    out = _decide(state, _s(60), "r1")
    assert out.state is not None and out.state.phase == "Published"
    assert reasons(out) == ["WeaviateKeyPublished"]
    published = wr.apply_to(GeneratedSecrets(weaviate_api_key="old"), out.state)
    assert published.weaviate_api_key == "new1"
    assert published.weaviate_accepted == ("new1", "old")  # same list: no second roll
    assert out.record["retireAfter"] == "2026-12-03T00:11:00Z"


def test_a_rollout_that_never_finishes_is_reported_stuck_once_and_waits() -> None:
    state = _decide(None, T0, "r1").state
    out = _decide(state, _s(TIMEOUT), rolled=False)
    assert out.state == state and out.stuck and reasons(out) == ["WeaviateKeyRotationStuck"]
    assert out.record["stuck"] is True and out.wake_in is None
    again = _decide(state, _s(TIMEOUT + 60), rolled=False, previous=out.record)
    assert again.events == [] and again.state == state
    # Clients still hold the old key, which every pod (old or new template) accepts.
    assert wr.apply_to(GeneratedSecrets(weaviate_api_key="old"), state).weaviate_api_key == "old"


def test_published_retires_after_grace_once_the_secret_holds_the_new_key() -> None:
    state = _decide(None, T0, "r1").state
    state = _decide(state, _s(60)).state
    assert state is not None and state.phase == "Published"
    at = _s(60 + GRACE)
    assert _decide(state, at - dt.timedelta(seconds=1), current="new1").state == state
    assert _decide(state, at, current="old").state == state  # Secret not written yet
    out = _decide(state, at, current="new1")
    assert out.state is not None and out.state.phase == "Idle" and out.state.keys == {}
    assert reasons(out) == ["OldWeaviateKeyRetired"] and out.state.completed_at == at
    retired = wr.apply_to(GeneratedSecrets(weaviate_api_key="new1"), out.state)
    assert retired.weaviate_accepted == ()


def test_the_same_annotation_never_rotates_twice_and_a_new_value_does() -> None:
    state = _decide(None, T0, "r1").state
    state = _decide(state, _s(60), "r1").state
    state = _decide(state, _s(60 + GRACE), "r1", current="new1").state
    assert state is not None and state.phase == "Idle"
    again = _decide(state, _s(60 + GRACE + 60), "r1", current="new1")
    assert again.state == state and again.events == []
    fresh = _decide(state, _s(60 + GRACE + 60), "r2", current="new1")
    assert fresh.state is not None and fresh.state.phase == "Issued"
    assert fresh.state.keys["weaviate"][0] == "new1"  # the last rotation's key is the old one


def test_a_request_during_a_rotation_is_queued_then_starts() -> None:
    state = _decide(None, T0, "r1").state
    out = _decide(state, _s(10), "r2", rolled=False)
    assert out.state == state and out.record["queued"] == "r2"
    assert reasons(out) == ["WeaviateKeyRotationQueued"]
    again = _decide(state, _s(20), "r2", previous=out.record, rolled=False)
    assert again.events == [] and again.record["queued"] == "r2"
    state = _decide(state, _s(60), "r2").state
    out = _decide(state, _s(60 + GRACE), "r2", current="new1")
    assert reasons(out) == ["OldWeaviateKeyRetired", "WeaviateKeyRotationStarted"]


def test_the_schedule_starts_its_clock_then_rotates() -> None:
    spec = _spec(rotation={"intervalHours": 24})
    first = _decide(None, T0, spec=spec)
    assert first.state is not None and first.state.phase == "Idle" and first.events == []
    later = _decide(first.state, T0 + dt.timedelta(hours=23), spec=spec)
    assert later.state == first.state and later.wake_in == 3600
    due = _decide(first.state, T0 + dt.timedelta(hours=24), spec=spec)
    assert due.state is not None and due.state.phase == "Issued"
    assert due.state.request.startswith("schedule@")


def test_bounds_are_enforced_by_the_spec() -> None:
    with pytest.raises(ValidationError):
        _spec(rotation={"gracePeriodSeconds": 1})
    with pytest.raises(ValidationError):
        _spec(rotation={"rolloutTimeoutSeconds": 10})


# --- builders --------------------------------------------------------------------------------


def test_builders_switch_weaviates_reference_and_clients_read_a_file() -> None:
    spec = _spec()
    secrets = complete(spec, current=GeneratedSecrets(), token=counter_tokens("k"))
    idle = build_all(spec, NAMES, secrets=secrets, prometheus_operator=False)
    assert _allowed_ref(idle) == "weaviate-api-key"
    overlapping = dataclasses.replace(secrets, weaviate_accepted=("n", secrets.weaviate_api_key))
    rotating = build_all(spec, NAMES, secrets=overlapping, prometheus_operator=False)
    assert _allowed_ref(rotating) == "weaviate-api-keys"  # the template change rolls the pods
    data = internal_auth_data(NAMES, overlapping)
    assert data["weaviate-api-keys"] == f"n,{secrets.weaviate_api_key}"
    assert internal_auth_data(NAMES, secrets)["weaviate-api-keys"] == secrets.weaviate_api_key
    # Nothing but the Weaviate StatefulSet changes between the two.
    changed = [
        (a["kind"], a["metadata"]["name"])
        for a, b in zip(idle, rotating, strict=True)
        if a != b and a["kind"] != "Secret"
    ]
    assert changed == [("StatefulSet", "demo-weaviate")]
    # The API and the workers read the key from a mounted file, never from env.
    for obj in idle:
        if obj["kind"] != "Deployment":
            continue
        (container,) = obj["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container.get("env", [])}
        assert "INDEXFORGE_WEAVIATE_API_KEY" not in env
        if "INDEXFORGE_WEAVIATE_URL" in env:
            assert env["INDEXFORGE_WEAVIATE_API_KEY_FILE"]["value"] == (
                "/var/run/indexforge/weaviate/api-key"
            )
            volumes = obj["spec"]["template"]["spec"]["volumes"]
            (volume,) = [v for v in volumes if v["name"] == "weaviate-api-key"]
            assert volume["secret"]["items"] == [{"key": "weaviate-api-key", "path": "api-key"}]
            assert "subPath" not in str(container["volumeMounts"])


def test_rolled_out_needs_every_pod_updated_and_ready_with_the_desired_reference() -> None:
    spec = _spec()
    desired = wr.desired_statefulset(spec, NAMES, overlap=True)
    assert not wr.rolled_out(desired, None)
    live = _live_sts(spec, overlap=False, updated=3, ready=3)
    assert not wr.rolled_out(desired, live)  # still the old template
    assert not wr.rolled_out(desired, _live_sts(spec, overlap=True, updated=2, ready=3))
    assert not wr.rolled_out(desired, _live_sts(spec, overlap=True, updated=3, ready=2))
    stale = _live_sts(spec, overlap=True, updated=3, ready=3)
    stale["status"]["observedGeneration"] = 1
    assert not wr.rolled_out(desired, stale)
    assert wr.rolled_out(desired, _live_sts(spec, overlap=True, updated=3, ready=3))


def _live_sts(spec: IndexForgeSpec, *, overlap: bool, updated: int, ready: int) -> dict[str, Any]:
    live = copy.deepcopy(wr.desired_statefulset(spec, NAMES, overlap=overlap))
    live["metadata"]["generation"] = 2
    live["status"] = {"observedGeneration": 2, "replicas": 3, "updatedReplicas": updated,
                      "readyReplicas": ready}  # fmt: skip
    return live


# --- cluster side: write-ahead, restart, failed write ----------------------------------------


class Cluster(key_rotation_tests.Cluster):
    """The state Secret, the internal-auth Secret and Weaviate's StatefulSet."""

    def roll_weaviate(self, spec: IndexForgeSpec, *, overlap: bool, ready: int = 3) -> None:
        live = _live_sts(spec, overlap=overlap, updated=3, ready=ready)
        self.objects[("StatefulSet", live["metadata"]["name"])] = live


def _body(annotation: str | None, status: dict[str, Any]) -> dict[str, Any]:
    ann = {wr.ANNOTATION: annotation} if annotation else {}
    meta = {"name": "demo", "namespace": "shop", "uid": "u1", "annotations": ann}
    return {"apiVersion": "indexforge.io/v1alpha1", "kind": "IndexForge", "metadata": meta,
            "status": status}  # fmt: skip


def _pass(
    cluster: Cluster, spec: IndexForgeSpec, secrets: GeneratedSecrets, now: dt.datetime,
    annotation: str | None, status: dict[str, Any],
) -> tuple[wr.Handled, GeneratedSecrets]:  # fmt: skip
    """One reconcile: handle, then "apply" the internal-auth Secret built from its result."""
    out = wr.handle(
        cluster, _body(annotation, status), spec, NAMES, live=cluster.get,  # type: ignore[arg-type]
        secrets=secrets, now=now, write=True, token=counter_tokens("new"),
    )  # fmt: skip
    status |= out.status
    if cluster.fail_writes:
        return out, secrets
    data = internal_auth_data(NAMES, out.secrets)
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    secret = {"kind": "Secret", "metadata": {"name": NAMES.internal_auth}, "data": encoded}
    cluster.objects[("Secret", NAMES.internal_auth)] = secret
    # What the next pass reads back: clients' key as the Secret holds it.
    return out, dataclasses.replace(secrets, weaviate_api_key=out.secrets.weaviate_api_key)


def _listed(cluster: Cluster) -> str:
    data = cluster.objects[("Secret", NAMES.internal_auth)]["data"]
    return base64.b64decode(data["weaviate-api-keys"]).decode()


def test_handle_writes_ahead_and_a_restarted_operator_resumes_to_the_end() -> None:
    spec, cluster, status = _spec(), Cluster(), {}
    secrets = complete(spec, current=GeneratedSecrets(), token=counter_tokens("old"))
    old = secrets.weaviate_api_key
    out, secrets = _pass(cluster, spec, secrets, T0, "r1", status)
    assert reasons(out) == ["WeaviateKeyRotationStarted"] and cluster.writes == 1
    stored = wr.state_from_secret(cluster.objects[("Secret", NAMES.weaviate_key_rotation)])
    assert stored is not None and stored.phase == "Issued" and stored.keys["weaviate"] == (
        old, "new1")  # fmt: skip
    assert _listed(cluster) == f"new1,{old}" and secrets.weaviate_api_key == old
    assert status["weaviateKeyRotation"]["phase"] == "Issued"
    assert "new1" not in str(status) and old not in str(status)
    # A new operator process: only the cluster is left. Weaviate still on the old template.
    cluster.roll_weaviate(spec, overlap=False)
    out, secrets = _pass(cluster, spec, secrets, _s(30), "r1", status)
    assert out.events == [] and secrets.weaviate_api_key == old
    cluster.roll_weaviate(spec, overlap=True, ready=2)  # one pod not ready yet
    out, secrets = _pass(cluster, spec, secrets, _s(40), "r1", status)
    assert out.events == []
    cluster.roll_weaviate(spec, overlap=True)
    out, secrets = _pass(cluster, spec, secrets, _s(50), "r1", status)
    assert reasons(out) == ["WeaviateKeyPublished"] and secrets.weaviate_api_key == "new1"
    assert _listed(cluster) == f"new1,{old}"  # still both
    out, secrets = _pass(cluster, spec, secrets, _s(50 + GRACE - 1), "r1", status)
    assert out.events == [] and status["weaviateKeyRotation"]["phase"] == "Published"
    out, secrets = _pass(cluster, spec, secrets, _s(50 + GRACE), "r1", status)
    assert reasons(out) == ["OldWeaviateKeyRetired"]
    assert _listed(cluster) == "new1" and status["weaviateKeyRotation"]["phase"] == "Idle"
    assert out.secrets.weaviate_accepted == ()  # Weaviate's reference goes back: roll #2


def _stuck_gauge(credential: str = "weaviate-key") -> float:
    gauge = metrics.KEY_ROTATION_STUCK.labels(namespace="shop", name="demo", credential=credential)
    return float(gauge._value.get())


def test_a_stuck_restart_shows_in_the_condition_and_the_gauge_until_it_finishes() -> None:
    spec, cluster, status = _spec(), Cluster(), {}
    secrets = complete(spec, current=GeneratedSecrets(), token=counter_tokens("old"))
    out, secrets = _pass(cluster, spec, secrets, T0, "r1", status)
    assert [(c.type, c.status, c.reason) for c in out.conditions] == [
        ("WeaviateKeyRotation", "Unknown", "KeyIssued")]  # fmt: skip
    assert _stuck_gauge() == 0
    cluster.roll_weaviate(spec, overlap=True, ready=2)  # a pod that never becomes ready
    out, secrets = _pass(cluster, spec, secrets, _s(TIMEOUT), None, status)
    (cond,) = out.conditions
    assert (cond.status, cond.reason) == ("False", "WeaviateRolloutStuck")
    assert f"{TIMEOUT}s" in cond.message and "new1" not in cond.message
    assert _stuck_gauge() == 1 and reasons(out) == ["WeaviateKeyRotationStuck"]
    cluster.roll_weaviate(spec, overlap=True)  # the pod came up: the rotation goes on
    out, secrets = _pass(cluster, spec, secrets, _s(TIMEOUT + 30), None, status)
    assert [(c.status, c.reason) for c in out.conditions] == [("Unknown", "GracePeriod")]
    assert _stuck_gauge() == 0 and reasons(out) == ["WeaviateKeyPublished"]
    # The gateway's series is its own: a stuck Weaviate never shows as a stuck gateway.
    assert _stuck_gauge("gateway-key") == 0


def test_a_failed_state_write_changes_nothing() -> None:
    spec, cluster, status = _spec(), Cluster(fail_writes=True), {}
    secrets = complete(spec, current=GeneratedSecrets(), token=counter_tokens("old"))
    out, _ = _pass(cluster, spec, secrets, T0, "r1", status)
    assert out.events == [] and [r for r, _ in out.failures] == ["WeaviateKeyRotationNotSaved"]
    assert out.secrets.weaviate_accepted == () and out.objects == []


def test_paused_or_unreadable_store_reports_only() -> None:
    spec, cluster = _spec(), Cluster()
    secrets = complete(spec, current=GeneratedSecrets(), token=counter_tokens("old"))
    out = wr.handle(
        cluster, _body("r1", {}), spec, NAMES, live=cluster.get,  # type: ignore[arg-type]
        secrets=secrets, now=T0, write=False,
    )  # fmt: skip
    assert cluster.writes == 0 and out.events == [] and out.secrets == secrets


def test_a_garbled_state_secret_is_reported_and_weaviate_keeps_the_clients_key() -> None:
    spec, cluster, status = _spec(), Cluster(), {}
    secrets = complete(spec, current=GeneratedSecrets(), token=counter_tokens("old"))
    bad = wr.state_secret(NAMES, State(phase="Published", consumers=("weaviate",),
                                       started_at=T0, published_at=T0,
                                       keys={"weaviate": ("x y", "z")}))  # fmt: skip
    cluster.objects[("Secret", NAMES.weaviate_key_rotation)] = bad
    out, after = _pass(cluster, spec, secrets, _s(5), None, status)
    assert reasons(out) == ["WeaviateKeyRotationStateInvalid"]
    assert after.weaviate_api_key == secrets.weaviate_api_key
    assert _listed(cluster) == secrets.weaviate_api_key and out.objects == []
