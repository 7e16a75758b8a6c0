"""Helpers for the builder tests: specs from camelCase dicts, builds, object lookups."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from indexforge_operator.builders import build_all
from indexforge_operator.generated import GeneratedSecrets, complete
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec

Obj = dict[str, Any]
NAMES = Names(instance="demo", namespace="shop")


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def make_spec(raw: Mapping[str, Any] | None = None) -> IndexForgeSpec:
    return IndexForgeSpec.model_validate(dict(raw or {}))


def counter_tokens(prefix: str = "tok") -> Callable[[], str]:
    """Deterministic stand-in for secrets.token_urlsafe."""
    numbers = itertools.count(1)
    return lambda: f"{prefix}{next(numbers)}"


def secrets_for(spec: IndexForgeSpec) -> GeneratedSecrets:
    return complete(spec, current=GeneratedSecrets(), token=counter_tokens())


def build_fresh(
    raw: Mapping[str, Any] | None = None,
    *,
    prometheus_operator: bool = False,
    names: Names = NAMES,
) -> list[Obj]:
    spec = make_spec(raw)
    return build_all(
        spec, names, secrets=secrets_for(spec), prometheus_operator=prometheus_operator
    )


_CACHE: dict[tuple[str, bool, Names], list[Obj]] = {}


def build(
    raw: Mapping[str, Any] | None = None,
    *,
    prometheus_operator: bool = False,
    names: Names = NAMES,
) -> list[Obj]:
    """Like build_fresh, memoised (builders are pure; callers must not mutate the result)."""
    key = (json.dumps(raw or {}, sort_keys=True), prometheus_operator, names)
    if key not in _CACHE:
        _CACHE[key] = build_fresh(raw, prometheus_operator=prometheus_operator, names=names)
    return _CACHE[key]


def find(objs: list[Obj], kind: str, name: str) -> Obj:
    matches = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def maybe(objs: list[Obj], kind: str, name: str) -> Obj | None:
    matches = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    return matches[0] if matches else None


def workloads(objs: list[Obj]) -> Iterator[Obj]:
    yield from (o for o in objs if o["kind"] in ("Deployment", "StatefulSet"))


def containers(pod_spec: Obj) -> list[Obj]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def env_of(container: Obj) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}
