"""Ownership and pruning decisions, as pure functions over plain dicts.

Every child carries an ownerReference to its IndexForge (so deleting the CR garbage-collects
it) and the instance labels (so the reconciler can find children it no longer wants).
"""

from __future__ import annotations

import copy
from typing import Any

Obj = dict[str, Any]
ObjKey = tuple[str, str, str, str]  # apiVersion, kind, namespace, name


def key(obj: Obj) -> ObjKey:
    meta = obj["metadata"]
    return (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])


def describe(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def owner_reference(owner: Obj) -> Obj:
    """A controller reference to the CR; blockOwnerDeletion keeps foreground deletes ordered."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def with_owner(obj: Obj, owner: Obj) -> Obj:
    """A copy of ``obj`` owned by ``owner`` (builders stay free of cluster identities)."""
    owned = copy.deepcopy(obj)
    owned["metadata"]["namespace"] = owner["metadata"]["namespace"]
    owned["metadata"]["ownerReferences"] = [owner_reference(owner)]
    return owned


def is_owned_by(obj: Obj, owner_uid: str) -> bool:
    return any(ref.get("uid") == owner_uid for ref in obj["metadata"].get("ownerReferences", []))


def prune_candidates(live: list[Obj], desired: list[Obj], owner_uid: str) -> list[Obj]:
    """Live children of this owner that the desired set no longer contains.

    Only objects that carry our ownerReference are ever pruned: a label match alone could be
    an object a user created by hand with copied labels.
    """
    wanted = {key(o) for o in desired}
    return [o for o in live if is_owned_by(o, owner_uid) and key(o) not in wanted]
