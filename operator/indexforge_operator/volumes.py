"""Volume expansion: a grown `persistence.size` (or `storageSize`) reaches the existing PVCs.

A StatefulSet's volumeClaimTemplates are immutable, and a changed template would never reach
the PVCs it already created anyway. So, when the spec's size exceeds the live template's:

1. every PVC of the StatefulSet (`<template>-<statefulset>-<ordinal>`) gets its
   `spec.resources.requests.storage` patched (the CSI resizer and kubelet do the rest);
2. the StatefulSet is deleted with propagationPolicy Orphan (`kubectl delete
   --cascade=orphan`): its pods keep running, unowned, and the pass does not apply it;
3. the next pass (the watch reports the deletion) creates it with the new template; the
   StatefulSet controller adopts the running pods (same selector, same revision: no restart).

Nothing is patched when a PVC's StorageClass lacks `allowVolumeExpansion: true` (the API
server would refuse the patch): the StatefulSet keeps its live template so the rest of the
spec still applies, and the CR reports the StorageClass. Shrinking is refused at admission
(the CRD's transition rule); a smaller size arriving anyway is treated the same way.

The decisions are pure functions over plain dicts; ``expand`` is the I/O around them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from indexforge_operator.children import ChildView
from indexforge_operator.conditions import Condition
from indexforge_operator.kube import Kube, error_message
from indexforge_operator.quantity import parse_quantity

Obj = dict[str, Any]
CONDITION = "VolumeExpansion"
STORAGE_CLASSES = "/apis/storage.k8s.io/v1/storageclasses"
# PVC conditions the resize controller and kubelet set while a volume grows.
RESIZE_CONDITIONS = ("Resizing", "FileSystemResizePending")


@dataclass(frozen=True)
class Claim:
    """One live PVC, reduced to what expansion looks at."""

    name: str
    requested: str
    capacity: str | None
    storage_class: str | None
    resizing: tuple[str, ...] = ()  # RESIZE_CONDITIONS currently True

    @classmethod
    def of(cls, pvc: Obj) -> Claim:
        spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
        active = tuple(
            str(c["type"])
            for c in status.get("conditions") or []
            if c.get("type") in RESIZE_CONDITIONS and c.get("status") == "True"
        )
        return cls(
            name=pvc["metadata"]["name"],
            requested=str(spec.get("resources", {}).get("requests", {}).get("storage", "0")),
            capacity=(status.get("capacity") or {}).get("storage"),
            storage_class=spec.get("storageClassName"),
            resizing=active,
        )


@dataclass(frozen=True)
class Plan:
    """What to do for one StatefulSet."""

    statefulset: str
    size: str  # what the spec asks for
    patches: tuple[str, ...] = ()  # PVCs whose request goes up to ``size``
    recreate: bool = False  # delete (orphan) the StatefulSet; a later pass re-creates it
    keep_size: str | None = None  # apply the StatefulSet with this (live) size instead
    finding: tuple[str, str] | None = None  # (reason, message) when expansion is refused


def claim_size(sts: Obj) -> str | None:
    """Storage requested by the StatefulSet's (first) claim template, if it has one."""
    templates = (sts.get("spec") or {}).get("volumeClaimTemplates") or []
    if not templates:
        return None
    return str(templates[0]["spec"]["resources"]["requests"]["storage"])


def with_claim_size(sts: Obj, size: str) -> Obj:
    """A copy of the StatefulSet whose claim template asks for ``size``."""
    spec = dict(sts["spec"])
    first = dict(spec["volumeClaimTemplates"][0])
    first["spec"] = {**first["spec"], "resources": {"requests": {"storage": size}}}
    spec["volumeClaimTemplates"] = [first, *spec["volumeClaimTemplates"][1:]]
    return {**sts, "spec": spec}


def claims_of(sts: Obj, pvcs: Iterable[Claim]) -> list[Claim]:
    """The PVCs the StatefulSet created from its claim template, every ordinal."""
    template = sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
    pattern = re.compile(rf"^{re.escape(template)}-{re.escape(sts['metadata']['name'])}-\d+$")
    return sorted((c for c in pvcs if pattern.match(c.name)), key=lambda c: c.name)


def _expandable(class_name: str | None, classes: Mapping[str, Obj | None]) -> bool:
    sc = classes.get(class_name or "")
    return sc is not None and sc.get("allowVolumeExpansion") is True


def decide(
    desired: Obj, live: Obj | None, pvcs: Iterable[Claim], classes: Mapping[str, Obj | None]
) -> Plan | None:
    """The plan for one desired StatefulSet, or None when its claim size did not change.

    ``classes`` maps StorageClass names to the live objects (None: not found).
    """
    want, had = claim_size(desired), None if live is None else claim_size(live)
    name = desired["metadata"]["name"]
    if want is None or had is None or parse_quantity(want) == parse_quantity(had):
        return None
    if parse_quantity(want) < parse_quantity(had):
        message = f"StatefulSet {name}: volumes cannot shrink ({had} -> {want}); keeping {had}"
        return Plan(name, want, keep_size=had, finding=("VolumeShrinkRefused", message))
    claims = claims_of(desired, pvcs)
    refused = [c for c in claims if not _expandable(c.storage_class, classes)]
    if refused:
        listed = ", ".join(
            f"{c.name} (StorageClass {c.storage_class or '<none>'})" for c in refused
        )
        message = (
            f"StatefulSet {name}: {want} requested but {listed} cannot grow: the StorageClass "
            f"does not set allowVolumeExpansion: true (or does not exist); nothing patched, "
            f"the volumes stay at {had}"
        )
        return Plan(name, want, keep_size=had, finding=("StorageClassNoExpansion", message))
    patches = tuple(c.name for c in claims if parse_quantity(c.requested) < parse_quantity(want))
    return Plan(name, want, patches=patches, recreate=True)


def is_held(obj: Obj, held: set[str]) -> bool:
    """Whether ``obj`` is a StatefulSet being re-created (not applied this pass)."""
    return obj["kind"] == "StatefulSet" and obj["metadata"]["name"] in held


def pvc_patch(size: str) -> Obj:
    """The merge patch that grows one PVC."""
    return {"spec": {"resources": {"requests": {"storage": size}}}}


def progress(claims: Iterable[tuple[Claim, str]]) -> tuple[str, str] | None:
    """(reason, message) while some PVC's capacity is below the spec's size, else None.

    The reason is the most advanced step any PVC is in: Resizing (the volume grows),
    FileSystemResizePending (the file system grows when kubelet next mounts it), or
    ExpansionPending (requested, no resizer has started yet).
    """
    waiting: list[str] = []
    reasons: set[str] = set()
    for claim, want in claims:
        have = claim.capacity
        if have is not None and parse_quantity(have) >= parse_quantity(want):
            continue
        step = claim.resizing[-1] if claim.resizing else "ExpansionPending"
        reasons.add(step)
        waiting.append(f"{claim.name}: {have or 'unknown'} of {want} ({step})")
    if not waiting:
        return None
    reason = next(r for r in (*RESIZE_CONDITIONS, "ExpansionPending") if r in reasons)
    return reason, "; ".join(waiting)


def condition(
    findings: list[tuple[str, str]], waiting: tuple[str, str] | None, *, had_condition: bool
) -> Condition | None:
    """The VolumeExpansion condition: shown once an expansion started, kept True after it."""
    if findings:
        reason = findings[0][0]
        return Condition(CONDITION, "False", reason, "; ".join(m for _, m in findings))
    if waiting is not None:
        return Condition(CONDITION, "False", *waiting)
    if had_condition:
        return Condition(CONDITION, "True", "VolumesExpanded", "every volume has its size")
    return None


@dataclass
class Expansion:
    """What ``expand`` did: StatefulSets to leave out of this pass's apply, the desired list
    (sizes kept where expansion is refused), the condition, findings for Degraded, events."""

    desired: list[Obj]
    held: set[str] = field(default_factory=set)
    condition: Condition | None = None
    findings: list[tuple[str, str]] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    writes: int = 0


def _previous(conditions: list[Obj]) -> Obj | None:
    return next((c for c in conditions if c.get("type") == CONDITION), None)


def expand(
    kube: Kube,
    view: ChildView,
    desired: list[Obj],
    *,
    namespace: str,
    selector: str,
    previous: list[Obj],
    write: bool,
) -> Expansion:
    """Plan and carry out expansions for this pass (``write`` False: paused, only report).

    Asks the API server nothing unless a claim size changed or an expansion is still being
    reported, so an idle pass stays free of requests.
    """
    before = _previous(previous)
    with_claims = [o for o in desired if o["kind"] == "StatefulSet" and claim_size(o) is not None]
    changed = [o for o in with_claims if claim_size(o) != claim_size(view.live(o) or o)]
    reporting = before is not None and before.get("status") != "True"
    result = Expansion(desired=list(desired))
    if not changed and not reporting:
        if before is not None:
            result.condition = condition([], None, had_condition=True)
        return result
    listed = kube.list_path(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", selector)
    pvcs = [Claim.of(p) for p in listed]
    classes: dict[str, Obj | None] = {}
    for claim in pvcs:
        name = claim.storage_class or ""
        if name and name not in classes:
            classes[name] = kube.get_path(f"{STORAGE_CLASSES}/{name}")
    replaced: dict[str, Obj] = {}
    for sts in changed:
        plan = decide(sts, view.live(sts), pvcs, classes)
        if plan is None:
            continue
        if plan.finding is not None:
            result.findings.append(plan.finding)
        if plan.keep_size is not None:
            replaced[sts["metadata"]["name"]] = with_claim_size(sts, plan.keep_size)
        if plan.recreate and write:
            try:
                for pvc in plan.patches:
                    path = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{pvc}"
                    kube.merge_patch_path(path, pvc_patch(plan.size))
                    result.writes += 1
                kube.delete(sts, propagation="Orphan")
                result.writes += 1
            except ApiException as exc:
                # The StatefulSet keeps its live template; the next pass tries again.
                message = f"StatefulSet {plan.statefulset}: {error_message(exc)}"
                result.findings.append(("VolumeExpansionFailed", message))
                replaced[plan.statefulset] = with_claim_size(
                    sts, str(claim_size(view.live(sts) or sts))
                )
                continue
            result.held.add(plan.statefulset)
        if plan.recreate and write and plan.patches:  # not again while the deletion finishes
            result.events.append(
                (
                    "Normal",
                    "VolumeExpansionStarted",
                    f"StatefulSet {plan.statefulset}: PVCs {', '.join(plan.patches) or '-'} "
                    f"grow to {plan.size}; StatefulSet re-created with the new claim template "
                    "(pods keep running)",
                )
            )
    result.desired = [replaced.get(o["metadata"]["name"], o) if o["kind"] == "StatefulSet" else o
                      for o in desired]  # fmt: skip
    # Progress of every claim against the size its StatefulSet asks for (after a refusal,
    # the kept live size: nothing is pending then).
    sizes = {
        c.name: str(claim_size(o))
        for o in result.desired
        if o["kind"] == "StatefulSet" and claim_size(o) is not None
        for c in claims_of(o, pvcs)
    }
    waiting = progress((c, sizes[c.name]) for c in pvcs if c.name in sizes)
    result.condition = condition(result.findings, waiting, had_condition=before is not None)
    for reason, message in result.findings:
        if before is None or before.get("reason") != reason:  # announce once, not every pass
            result.events.append(("Warning", reason, message))
    return result
