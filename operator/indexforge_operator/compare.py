"""Desired versus cached live objects, as pure functions: what the cache keeps, what drifted.

A no-op pass must send nothing, so the reconciler applies an object only when ``drift``
finds a field we set that the live object does not carry with the same value. Fields others
add (defaults, status, HPA replicas on objects we leave them to) are ignored, the way
server-side apply ignores fields it does not own.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from indexforge_operator.quantity import parse_quantity

Obj = dict[str, Any]

DIGEST_PREFIX = "sha256:"
# Metadata we set; the rest (uid, resourceVersion, managedFields, ...) is the server's.
_OUR_METADATA = ("labels", "annotations", "ownerReferences")
# Workload status the reconciler reads for readiness; everything else of status is dropped.
_WORKLOAD_STATUS = (
    "observedGeneration",
    "replicas",
    "readyReplicas",
    "updatedReplicas",
    "availableReplicas",
)
_WORKLOAD_KINDS = ("Deployment", "StatefulSet")
# Kinds whose Ready condition is the only status the reconciler reads (it reports it).
_CONDITION_KINDS = ("ExternalSecret",)
_CONDITION_FIELDS = ("type", "status", "reason", "message")
_DATA_KINDS = ("Secret", "ConfigMap")
_DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
# Keys whose values are quantities the API server rewrites into canonical form ("0.5" -> "500m").
_QUANTITY_PARENTS = ("requests", "limits", "hard", "capacity")
_QUANTITY_KEYS = ("storage", "sizeLimit")


def digest(value: str) -> str:
    """What the cache keeps instead of a config value or secret: equal iff the value is."""
    return DIGEST_PREFIX + hashlib.sha256(value.encode()).hexdigest()


def trim(live: Obj, *, keep_data: bool = False) -> Obj:
    """The part of a live child the cache keeps.

    managedFields and most status are dropped (they are most of an object's size), config and
    secret values become digests unless ``keep_data`` (the generated Secrets, whose values the
    reconciler must read back): the operator then holds no copy of other secrets in memory.
    """
    meta = live.get("metadata") or {}
    kept_meta = {k: meta[k] for k in ("name", "namespace", "uid", "generation") if k in meta}
    for key in _OUR_METADATA:
        if key in meta:
            kept_meta[key] = meta[key]
    annotations = kept_meta.get("annotations")
    if annotations and any(a in annotations for a in _DROPPED_ANNOTATIONS):
        kept_meta["annotations"] = {
            k: v for k, v in annotations.items() if k not in _DROPPED_ANNOTATIONS
        }
    out: Obj = {"apiVersion": live.get("apiVersion"), "kind": live.get("kind")}
    for key, value in live.items():
        if key in ("apiVersion", "kind", "metadata", "status"):
            continue
        if live.get("kind") in _DATA_KINDS and key in ("data", "binaryData") and not keep_data:
            value = {k: digest(str(v)) for k, v in (value or {}).items()}
        out[key] = value
    out["metadata"] = kept_meta
    if live.get("kind") in _WORKLOAD_KINDS:
        status = live.get("status") or {}
        out["status"] = {k: status[k] for k in _WORKLOAD_STATUS if k in status}
    elif live.get("kind") in _CONDITION_KINDS:
        ready = [
            c
            for c in (live.get("status") or {}).get("conditions") or []
            if c.get("type") == "Ready"
        ]
        out["status"] = {
            "conditions": [{k: c[k] for k in _CONDITION_FIELDS if k in c} for c in ready]
        }
    return out


def _is_empty(value: Any) -> bool:
    """Go's zero values: the API server omits them (omitempty), so absent means equal."""
    return value is None or (not isinstance(value, bool | int | float) and value in ({}, [], ""))


def _is_zero(value: Any) -> bool:
    return _is_empty(value) or value is False or (type(value) is int and value == 0)


def _quantity_equal(a: Any, b: Any) -> bool:
    try:
        return Decimal(parse_quantity(str(a))) == Decimal(parse_quantity(str(b)))
    except ValueError:
        return False


def _scalar_equal(desired: Any, live: Any, *, key: str, parent: str) -> bool:
    if desired == live:
        return True
    if isinstance(live, str) and live.startswith(DIGEST_PREFIX) and isinstance(desired, str):
        return digest(desired) == live
    if parent in _QUANTITY_PARENTS or key in _QUANTITY_KEYS:
        return _quantity_equal(desired, live)
    return False


def _merge_key(items: list[Any]) -> str | None:
    """Lists that server-side apply merges by key (containers, env, volumes, ownerReferences):
    others may add entries to them (a sidecar, a second owner), which is not drift."""
    for candidate in ("uid", "name"):
        if items and all(isinstance(i, dict) and candidate in i for i in items):
            return candidate
    return None


def _diff_by_key(
    desired: list[Any], live: list[Any], path: str, key: str, merge_key: str
) -> str | None:
    by_key = {i.get(merge_key): i for i in live if isinstance(i, dict)}
    for item in desired:
        found = _diff(item, by_key.get(item[merge_key]), f"{path}[{item[merge_key]}]", key, key)
        if found:
            return found
    return None


def _diff(desired: Any, live: Any, path: str, key: str, parent: str) -> str | None:
    """The first path where ``live`` does not carry ``desired`` (None when it does)."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return None if _is_empty(desired) and _is_empty(live) else path
        for k, v in desired.items():
            if k not in live:
                if _is_zero(v):
                    continue  # the server drops zero values (omitempty)
                return f"{path}.{k}"
            found = _diff(v, live[k], f"{path}.{k}", k, key)
            if found:
                return found
        return None
    if isinstance(desired, list):
        if not isinstance(live, list):
            return None if _is_empty(desired) and _is_empty(live) else path
        merge_key = _merge_key(desired)
        if merge_key is not None:
            return _diff_by_key(desired, live, path, key, merge_key)
        if len(live) != len(desired):
            return path
        for i, (d, lv) in enumerate(zip(desired, live, strict=True)):
            found = _diff(d, lv, f"{path}[{i}]", key, parent)
            if found:
                return found
        return None
    return None if _scalar_equal(desired, live, key=key, parent=parent) else path


def drift(desired: Obj, live: Obj | None) -> str | None:
    """Why ``desired`` must be applied over ``live``, or None when nothing we set differs."""
    if live is None:
        return "missing"
    meta_desired = desired.get("metadata") or {}
    meta_live = live.get("metadata") or {}
    for key in _OUR_METADATA:
        if key in meta_desired:
            found = _diff(meta_desired[key], meta_live.get(key), f"metadata.{key}", key, "")
            if found:
                return found
    for key, value in desired.items():
        if key in ("apiVersion", "kind", "metadata", "status"):
            continue
        found = _diff(value, live.get(key), key, key, "")
        if found:
            return found
    return None
