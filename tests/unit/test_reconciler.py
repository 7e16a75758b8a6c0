"""One pass against an in-memory API (pure logic; the real API server runs in tests/integration).

The in-memory API stores what is applied and can be told to reject objects, which is how the
unit-level cases (partial failure, conflicts, no-op passes) are driven without a cluster.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

from kubernetes.client.exceptions import ApiException

from indexforge_operator import compare
from indexforge_operator.children import ChildView, cached_form
from indexforge_operator.reconciler import LEGACY_FINALIZER, reconcile

Obj = dict[str, Any]
UID = "uid-1"


class MemoryApi:
    """Implements the ``Kube`` calls a pass makes and records them."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], Obj] = {}
        self.calls: list[str] = []

    def get(self, ref: Obj) -> Obj | None:
        self.calls.append(f"GET {ref['kind']}/{ref['metadata']['name']}")
        return copy.deepcopy(self.objects.get((ref["kind"], ref["metadata"]["name"])))

    def apply(self, obj: Obj) -> Obj:
        name = obj["metadata"]["name"]
        self.calls.append(f"APPLY {obj['kind']}/{name}")
        self.objects[(obj["kind"], name)] = copy.deepcopy(obj)
        return obj

    def delete(self, obj: Obj) -> None:
        self.calls.append(f"DELETE {obj['kind']}/{obj['metadata']['name']}")
        self.objects.pop((obj["kind"], obj["metadata"]["name"]), None)

    def remove_finalizer(self, *args: Any) -> None:
        self.calls.append("UNFINALIZE")

    def list_pods(self, *_: Any) -> list[Obj]:
        return []

    def list_events(self, *_: Any) -> list[Obj]:
        return []

    def view(self) -> ChildView:
        return ChildView.of(cached_form(o) for o in self.objects.values())


def _cr(**spec: Any) -> Obj:
    return {
        "apiVersion": "indexforge.io/v1alpha1",
        "kind": "IndexForge",
        "metadata": {"name": "x", "namespace": "ns", "uid": UID, "generation": 1},
        "spec": {"monitoring": {"enabled": False}, **spec},
    }


def _pass(api: MemoryApi, cr: Obj) -> Any:
    return reconcile(api, cr, view=api.view(), prometheus_operator=False, now="t")  # type: ignore[arg-type]


def _rejecting(api: MemoryApi, kind: str, name: str, message: str) -> None:
    def apply(obj: Obj) -> Obj:
        if (obj["kind"], obj["metadata"]["name"]) == (kind, name):
            exc = ApiException(status=422, reason="Unprocessable Entity")
            exc.body = json.dumps({"kind": "Status", "message": message}).encode()
            raise exc
        return MemoryApi.apply(api, obj)

    api.apply = apply  # type: ignore[method-assign]


def test_a_pass_over_an_unchanged_cache_sends_nothing() -> None:
    api = MemoryApi()
    first = _pass(api, _cr())
    assert first.writes > 20 and not first.failures
    api.calls.clear()
    second = _pass(api, _cr())
    assert second.writes == 0
    assert api.calls == [], "a no-op pass must not call the API server"


def test_a_rejected_object_does_not_stop_the_others_and_is_reported() -> None:
    api = MemoryApi()
    _rejecting(
        api,
        "Deployment",
        "x-api",
        'Deployment.apps "x-api" is invalid: requests.cpu must be <= limit',
    )
    out = _pass(api, _cr())
    applied = {f"{kind}/{name}" for kind, name in api.objects}
    assert "Deployment/x-api" not in applied
    after = {"Deployment/x-excel", "Deployment/x-gateway", "HorizontalPodAutoscaler/x-api"}
    assert after <= applied, "objects after the failure are still applied"
    assert out.failures == [
        (
            "ApplyFailed",
            'Deployment/x-api: Deployment.apps "x-api" is invalid: requests.cpu must be <= limit',
        )
    ]
    ready = next(c for c in out.status["conditions"] if c["type"] == "Ready")
    degraded = next(c for c in out.status["conditions"] if c["type"] == "Degraded")
    assert (ready["status"], ready["reason"]) == ("False", "ApplyFailed")
    assert (degraded["status"], degraded["reason"]) == ("True", "ApplyFailed")
    assert "x-api" in degraded["message"] and "requests.cpu" in degraded["message"]
    assert ("Warning", "ApplyFailed", out.failures[0][1]) in out.events


def test_secret_values_in_a_server_message_are_redacted() -> None:
    api = MemoryApi()
    first = _pass(api, _cr())
    assert not first.failures
    stored = api.objects[("Secret", "x-gateway-consumers")]
    key = base64.b64decode(next(iter(stored["data"].values()))).decode()
    api.objects.pop(("Secret", "x-gateway-config"))
    _rejecting(api, "Secret", "x-gateway-config", f"invalid value {key!r} in kong.yml")
    out = _pass(api, _cr())
    assert out.failures and key not in str(out.failures) and key not in str(out.status)
    assert "<redacted>" in out.failures[0][1]


def test_an_object_owned_by_another_controller_is_never_taken_over() -> None:
    api = MemoryApi()
    foreign = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "x-redis-ml",
            "namespace": "ns",
            "labels": {"app.kubernetes.io/managed-by": "indexforge-operator"},
            "ownerReferences": [
                {"uid": "other", "controller": True, "kind": "IndexForge", "name": "x-redis"}
            ],
        },
        "spec": {"ports": [{"port": 1}]},
    }
    api.objects[("Service", "x-redis-ml")] = foreign
    out = _pass(api, _cr())
    assert api.objects[("Service", "x-redis-ml")] == foreign
    assert "APPLY Service/x-redis-ml" not in api.calls
    assert "NameConflict" in [r for r, _ in out.failures]
    assert out.status["phase"] == "Degraded"


def test_an_unlabelled_object_of_the_same_name_is_found_and_left_alone() -> None:
    api = MemoryApi()
    api.objects[("ConfigMap", "x-redis-app-config")] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x-redis-app-config", "namespace": "ns"},
        "data": {"mine": "yes"},
    }

    out = reconcile(api, _cr(), view=ChildView(), prometheus_operator=False, now="t")  # type: ignore[arg-type]
    assert api.objects[("ConfigMap", "x-redis-app-config")]["data"] == {"mine": "yes"}
    assert any(r == "NameConflict" and "x-redis-app-config" in m for r, m in out.failures)


def test_prune_deletes_only_our_children_that_are_no_longer_wanted() -> None:
    api = MemoryApi()
    _pass(api, _cr())
    assert ("Deployment", "x-excel") in api.objects
    stranger = copy.deepcopy(api.objects[("Deployment", "x-excel")])
    stranger["metadata"]["name"] = "x-hand-made"
    stranger["metadata"]["ownerReferences"] = []
    api.objects[("Deployment", "x-hand-made")] = stranger
    out = _pass(api, _cr(excel={"enabled": False}))
    assert "Deployment/x-excel" in out.pruned
    assert ("Deployment", "x-excel") not in api.objects
    assert ("Deployment", "x-hand-made") in api.objects


def test_deleting_cr_only_drops_the_legacy_finalizer() -> None:
    api = MemoryApi()
    cr = _cr()
    cr["metadata"]["finalizers"] = [LEGACY_FINALIZER]
    cr["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    out = _pass(api, cr)
    assert api.calls == ["UNFINALIZE"] and out.status is None


def test_generated_keys_are_read_back_not_regenerated() -> None:
    api = MemoryApi()
    _pass(api, _cr())
    before = api.objects[("Secret", "x-gateway-consumers")]["data"]
    # A cold cache (operator restart) must still find the stored keys.
    reconcile(api, _cr(), view=ChildView(), prometheus_operator=False, now="t")  # type: ignore[arg-type]
    assert api.objects[("Secret", "x-gateway-consumers")]["data"] == before
    cached = api.view().live(api.objects[("Secret", "x-gateway-consumers")])
    assert cached is not None and cached["data"] == before, "generated values kept in the cache"
    cm = api.view().live(api.objects[("ConfigMap", "x-redis-app-config")])
    assert cm is not None and all(v.startswith(compare.DIGEST_PREFIX) for v in cm["data"].values())


def test_a_redis_restore_in_status_renders_its_redis_stopped_then_runs_the_job() -> None:
    """The restore's step comes from the CR's status (an operator restart keeps it): while
    Stopping the state Redis is applied with 0 replicas and said to be Restoring (phase
    Progressing, not Degraded); once at 0 with no pod left, the same kind of pass creates
    the restore Job."""
    api = MemoryApi()
    backup = {"enabled": True, "target": {"volume": {"claimName": "backups"}}}
    cr = _cr(backup=backup)
    _pass(api, cr)
    assert api.objects[("StatefulSet", "x-redis-state")]["spec"]["replicas"] == 1
    value = "redis-state/redis-20261202T023000Z.rdb"
    cr["metadata"]["annotations"] = {"indexforge.io/restore": value}
    cr["status"] = {"restoreRequest": {"request": value, "jobs": ["x-rst-restore-1"],
                                       "result": "Running", "step": "Stopping",
                                       "startedAt": "2026-12-02T20:00:00Z"}}  # fmt: skip
    now = "2026-12-02T20:00:05Z"
    out = reconcile(api, cr, view=api.view(), prometheus_operator=False, now=now)  # type: ignore[arg-type]
    assert api.objects[("StatefulSet", "x-redis-state")]["spec"]["replicas"] == 0
    assert api.objects[("StatefulSet", "x-redis-app")]["spec"]["replicas"] == 1
    assert ("Job", "x-rst-restore-1") not in api.objects  # it was still at 1 when observed
    conds = {c["type"]: c for c in out.status["conditions"]}
    assert conds["RedisStateAvailable"]["reason"] == "Restoring"
    assert out.status["phase"] == "Progressing" and conds["Degraded"]["status"] == "False"
    assert out.status["restoreRequest"]["step"] == "Stopping"

    cr["status"] = out.status
    nxt = reconcile(api, cr, view=api.view(), prometheus_operator=False, now=now)  # type: ignore[arg-type]
    assert nxt.status["restoreRequest"]["step"] == "Restoring"
    job = api.objects[("Job", "x-rst-restore-1")]
    assert job["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"] == {
        "claimName": "data-x-redis-state-0"
    }
    assert api.objects[("StatefulSet", "x-redis-state")]["spec"]["replicas"] == 0
