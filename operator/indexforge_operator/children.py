"""The owned-object cache as the reconciler sees it: live children without a request.

kopf indexes (fed by watch streams, see ``handlers.py``) keep a trimmed copy of every object
carrying our managed-by label, keyed by namespace. A pass takes a ``ChildView`` snapshot of
its namespace before it starts, so the reconciler stays kopf-free and tests drive it with a
plain list of objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from indexforge_operator import compare
from indexforge_operator.naming import LABEL_INSTANCE, Names

Obj = dict[str, Any]
ChildKey = tuple[str, str]  # kind, name (within one namespace)


def child_key(obj: Obj) -> ChildKey:
    return obj["kind"], obj["metadata"]["name"]


def controller_uid(obj: Obj) -> str | None:
    """uid of the object's controller owner, if it has one."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def generated_secret_names(obj: Obj) -> set[str]:
    """Names of the Secrets whose values the operator generated (and must read back)."""
    instance = (obj.get("metadata", {}).get("labels") or {}).get(LABEL_INSTANCE)
    namespace = obj.get("metadata", {}).get("namespace", "")
    try:
        names = Names(str(instance), str(namespace))
    except ValueError:
        return set()
    return {names.gateway_consumers, names.grafana_admin, names.internal_auth,
            names.gateway_key_rotation, names.redis_password_rotation,
            names.weaviate_key_rotation}  # fmt: skip


def cached_form(live: Obj) -> Obj:
    """What the cache stores of one live child (see ``compare.trim``)."""
    keep = live.get("kind") == "Secret" and (
        live.get("metadata", {}).get("name") in generated_secret_names(live)
    )
    return compare.trim(live, keep_data=keep)


@dataclass(frozen=True)
class ChildView:
    """Our live children in one namespace, as last seen by the watches."""

    objects: Mapping[ChildKey, Obj] = field(default_factory=dict)

    @classmethod
    def of(cls, items: Iterable[Obj]) -> ChildView:
        return cls({child_key(o): o for o in items})

    def live(self, desired: Obj) -> Obj | None:
        return self.objects.get(child_key(desired))
