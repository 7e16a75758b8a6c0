"""Volume expansion decisions (volumes.py): which PVCs grow, what patch, which finding."""

from __future__ import annotations

from typing import Any

import pytest

from indexforge_operator import volumes
from indexforge_operator.builders.storage import data_volume_claim, statefulset
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec
from indexforge_operator.spec_common import Persistence
from indexforge_operator.volumes import Claim

NAMES = Names("demo", "ns")
EXPANDS = {"standard": {"allowVolumeExpansion": True}, "fixed": {"provisioner": "x"}}


def _sts(size: str) -> dict[str, Any]:
    claim = data_volume_claim(NAMES, "redis-app", Persistence.model_validate({"size": size}))
    return statefulset(IndexForgeSpec(), NAMES, "redis-app", replicas=2, template={}, claim=claim)


def _claim(ordinal: int, size: str = "2Gi", sc: str | None = "standard", **kw: Any) -> Claim:
    return Claim(f"data-demo-redis-app-{ordinal}", size, kw.pop("capacity", size), sc, **kw)


def test_unchanged_size_needs_no_plan() -> None:
    assert volumes.decide(_sts("2Gi"), _sts("2048Mi"), [_claim(0)], EXPANDS) is None
    assert volumes.decide(_sts("4Gi"), None, [], EXPANDS) is None  # created, not grown


def test_growth_patches_every_ordinal_below_the_size_and_recreates() -> None:
    others = [Claim("data-demo-redis-app-extra", "1Gi", "1Gi", "standard"), _claim(1, "4Gi")]
    plan = volumes.decide(_sts("4Gi"), _sts("2Gi"), [_claim(0), _claim(2), *others], EXPANDS)
    assert plan is not None
    # ordinal 1 already asks for 4Gi; a PVC not named after an ordinal is not ours
    assert plan.patches == ("data-demo-redis-app-0", "data-demo-redis-app-2")
    assert plan.recreate and plan.keep_size is None and plan.finding is None
    assert volumes.pvc_patch("4Gi") == {"spec": {"resources": {"requests": {"storage": "4Gi"}}}}


@pytest.mark.parametrize("sc", ["fixed", "missing", None])
def test_class_without_expansion_patches_nothing_and_names_the_class(sc: str | None) -> None:
    plan = volumes.decide(_sts("4Gi"), _sts("2Gi"), [_claim(0), _claim(1, sc=sc)], EXPANDS)
    assert plan is not None and plan.finding is not None
    assert plan.patches == () and not plan.recreate and plan.keep_size == "2Gi"
    reason, message = plan.finding
    assert reason == "StorageClassNoExpansion"
    assert f"data-demo-redis-app-1 (StorageClass {sc or '<none>'})" in message
    assert "data-demo-redis-app-0" not in message


def test_shrink_keeps_the_live_size() -> None:
    plan = volumes.decide(_sts("1Gi"), _sts("2Gi"), [_claim(0)], EXPANDS)
    assert plan is not None and plan.keep_size == "2Gi" and plan.patches == ()
    assert plan.finding is not None and plan.finding[0] == "VolumeShrinkRefused"


def test_with_claim_size_changes_only_the_size() -> None:
    grown = _sts("4Gi")
    kept = volumes.with_claim_size(grown, "2Gi")
    assert volumes.claim_size(kept) == "2Gi" and volumes.claim_size(grown) == "4Gi"
    assert kept["spec"]["template"] == grown["spec"]["template"]
    template = kept["spec"]["volumeClaimTemplates"][0]
    assert template["metadata"]["name"] == "data" and template["spec"]["accessModes"]


def test_claim_reads_pvc_status() -> None:
    pvc = {
        "metadata": {"name": "data-demo-redis-app-0"},
        "spec": {"resources": {"requests": {"storage": "4Gi"}}, "storageClassName": "standard"},
        "status": {
            "capacity": {"storage": "2Gi"},
            "conditions": [
                {"type": "Resizing", "status": "False"},
                {"type": "FileSystemResizePending", "status": "True"},
            ],
        },
    }
    claim = Claim.of(pvc)
    assert claim == Claim("data-demo-redis-app-0", "4Gi", "2Gi", "standard",
                          ("FileSystemResizePending",))  # fmt: skip


def test_progress_reports_the_furthest_step_and_each_waiting_pvc() -> None:
    done = _claim(0, "4Gi")
    resizing = _claim(1, "4Gi", capacity="2Gi", resizing=("Resizing",))
    pending = _claim(2, "4Gi", capacity="2Gi")
    assert volumes.progress([(done, "4Gi")]) is None
    reason, message = volumes.progress([(done, "4Gi"), (resizing, "4Gi"), (pending, "4Gi")])  # type: ignore[misc]
    assert reason == "Resizing"
    assert message == (
        "data-demo-redis-app-1: 2Gi of 4Gi (Resizing); data-demo-redis-app-2: 2Gi of 4Gi "
        "(ExpansionPending)"
    )


def test_condition_appears_with_an_expansion_and_stays_true_after_it() -> None:
    assert volumes.condition([], None, had_condition=False) is None
    waiting = volumes.condition([], ("Resizing", "m"), had_condition=False)
    assert waiting is not None and (waiting.status, waiting.reason) == ("False", "Resizing")
    refused = volumes.condition([("StorageClassNoExpansion", "x")], None, had_condition=True)
    assert refused is not None and (refused.status, refused.reason) == (
        "False",
        "StorageClassNoExpansion",
    )
    done = volumes.condition([], None, had_condition=True)
    assert done is not None and (done.status, done.reason) == ("True", "VolumesExpanded")


class _Kube:
    """Records expand's calls; PVCs and StorageClasses as the API server would list them."""

    def __init__(self, pvcs: list[dict[str, Any]], classes: dict[str, Any]) -> None:
        self.pvcs, self.classes = pvcs, classes
        self.calls: list[tuple[str, ...]] = []

    def list_path(self, path: str, selector: str) -> list[dict[str, Any]]:
        self.calls.append(("list", path))
        return self.pvcs

    def get_path(self, path: str) -> Any:
        self.calls.append(("get", path))
        return self.classes.get(path.rsplit("/", 1)[1])

    def merge_patch_path(self, path: str, body: Any) -> Any:
        self.calls.append(("patch", path, body["spec"]["resources"]["requests"]["storage"]))

    def delete(self, obj: Any, *, propagation: str = "Background") -> None:
        self.calls.append(("delete", obj["metadata"]["name"], propagation))


def _pvc(ordinal: int, sc: str) -> dict[str, Any]:
    return {
        "metadata": {"name": f"data-demo-redis-app-{ordinal}"},
        "spec": {"resources": {"requests": {"storage": "2Gi"}}, "storageClassName": sc},
        "status": {"capacity": {"storage": "2Gi"}},
    }


def _expand(kube: _Kube, desired: dict[str, Any], live: dict[str, Any], **kw: Any) -> Any:
    from indexforge_operator.children import ChildView

    return volumes.expand(
        kube,  # type: ignore[arg-type]
        ChildView.of([live]),
        [desired],
        namespace="ns",
        selector="x=y",
        previous=kw.pop("previous", []),
        write=kw.pop("write", True),
    )


def test_expand_patches_deletes_orphan_and_holds_the_statefulset() -> None:
    kube = _Kube([_pvc(0, "standard"), _pvc(1, "standard")], EXPANDS)
    result = _expand(kube, _sts("4Gi"), _sts("2Gi"))
    assert kube.calls == [
        ("list", "/api/v1/namespaces/ns/persistentvolumeclaims"),
        ("get", "/apis/storage.k8s.io/v1/storageclasses/standard"),
        ("patch", "/api/v1/namespaces/ns/persistentvolumeclaims/data-demo-redis-app-0", "4Gi"),
        ("patch", "/api/v1/namespaces/ns/persistentvolumeclaims/data-demo-redis-app-1", "4Gi"),
        ("delete", "demo-redis-app", "Orphan"),
    ]
    assert result.held == {"demo-redis-app"} and result.findings == []
    assert result.condition.reason == "ExpansionPending"  # capacity still 2Gi
    assert [e[1] for e in result.events] == ["VolumeExpansionStarted"]


def test_expand_refused_writes_nothing_and_applies_the_live_size() -> None:
    kube = _Kube([_pvc(0, "fixed")], EXPANDS)
    result = _expand(kube, _sts("4Gi"), _sts("2Gi"))
    assert [c[0] for c in kube.calls] == ["list", "get"]
    assert result.held == set() and volumes.claim_size(result.desired[0]) == "2Gi"
    assert result.condition.status == "False"
    assert result.condition.reason == "StorageClassNoExpansion"
    assert [(e[0], e[1]) for e in result.events] == [("Warning", "StorageClassNoExpansion")]
    # announced once: the next pass, with the condition already there, posts no Event
    previous = [{"type": "VolumeExpansion", "status": "False", "reason": "StorageClassNoExpansion"}]
    again = _expand(_Kube([_pvc(0, "fixed")], EXPANDS), _sts("4Gi"), _sts("2Gi"), previous=previous)
    assert again.events == [] and again.findings


def test_expand_paused_only_reports_and_idle_asks_nothing() -> None:
    kube = _Kube([_pvc(0, "standard")], EXPANDS)
    result = _expand(kube, _sts("4Gi"), _sts("2Gi"), write=False)
    assert [c[0] for c in kube.calls] == ["list", "get"] and result.held == set()
    idle = _Kube([], {})
    assert _expand(idle, _sts("2Gi"), _sts("2Gi")).condition is None and idle.calls == []
