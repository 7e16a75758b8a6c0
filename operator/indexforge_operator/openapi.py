"""Convert a pydantic model's JSON schema into a Kubernetes *structural* OpenAPI v3 schema.

The API server accepts only a subset of JSON Schema in CRDs: no $ref, no anyOf for nullable
fields, no `const`, no `additionalProperties: false`, boolean `exclusiveMinimum`. This module
inlines and rewrites pydantic's output, keeps descriptions/defaults/bounds/CEL rules, and
reduces object defaults to `{}` wherever the nested defaults already produce the same value
(what `kubectl explain` shows stays short, and the two default sources cannot drift apart),
except on objects with CEL rules, which the API server checks against the literal default.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

Schema = dict[str, Any]

_COPIED = (
    "type",
    "description",
    "default",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "enum",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
)
_FORMATS = {"date-time", "date", "int32", "int64", "byte"}


def structural_schema(model: type[BaseModel]) -> Schema:
    """The structural schema of `model` (camelCase keys, as in YAML)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    schema = _convert(raw, defs)
    _reduce_object_defaults(schema)
    return schema


def _convert(node: Schema, defs: dict[str, Schema]) -> Schema:
    node = dict(node)
    base: Schema = {}
    if "$ref" in node:
        base = _convert(defs[node.pop("$ref").rsplit("/", 1)[-1]], defs)
    elif "allOf" in node and len(node["allOf"]) == 1:
        base = _convert(node.pop("allOf")[0], defs)
    elif "anyOf" in node:
        # Optional[X] is "X, may be absent": the API server prunes nulls of non-nullable fields.
        branches = [b for b in node.pop("anyOf") if b != {"type": "null"}]
        if len(branches) != 1:
            raise ValueError(f"unions cannot be expressed structurally: {branches}")
        base = _convert(branches[0], defs)
    out: Schema = dict(base)
    for key in _COPIED:
        if key in node:
            out[key] = copy.deepcopy(node[key])
    if "const" in node:
        out["enum"] = [node["const"]]
    for bound, edge in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if bound in node:
            out[edge], out[bound] = node[bound], True
    if node.get("format") in _FORMATS:
        out["format"] = node["format"]
    for key, value in node.items():
        if key.startswith("x-kubernetes-"):
            if key == "x-kubernetes-validations":
                value = [*base.get(key, []), *value]
            out[key] = copy.deepcopy(value)
    if "properties" in node:
        out["properties"] = {k: _convert(v, defs) for k, v in node["properties"].items()}
    if "items" in node:
        out["items"] = _convert(node["items"], defs)
    additional = node.get("additionalProperties")
    names = dict(node.get("propertyNames", {}))
    if "patternProperties" in node:
        # Pydantic puts a constrained key pattern here; CRDs know no patternProperties.
        ((names["pattern"], additional),) = node["patternProperties"].items()
    if isinstance(additional, dict):
        out["additionalProperties"] = _convert(additional, defs)
        out.setdefault("type", "object")
        _key_rules(out, names)
    elif additional is True:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "default" in out:
        if out["default"] is None:
            del out["default"]
        else:
            out["default"] = _without_nulls(out["default"])
    if "enum" in out and "type" not in out:
        out["type"] = _json_type(out["enum"][0])
    return out


def _key_rules(out: Schema, names: Schema) -> None:
    """Map keys cannot carry a schema in CRDs; check them with CEL on the map instead.

    The length always; the syntax when the key type declares a rule over `k` (its loop
    variable here) under `x-indexforge-key-rule`. A bare key pattern is not turned into a rule
    by itself: it would have no message a user could act on.
    """
    checks: list[dict[str, str]] = []
    if "maxLength" in names:
        checks.append(
            {
                "rule": f"self.all(k, size(k) <= {names['maxLength']})",
                "message": f"keys must be at most {names['maxLength']} characters",
            }
        )
    key_rule = names.get("x-indexforge-key-rule")
    if key_rule is not None:
        checks.append({"rule": f"self.all(k, {key_rule['rule']})", "message": key_rule["message"]})
    if checks:
        out["x-kubernetes-validations"] = [*out.get("x-kubernetes-validations", []), *checks]


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _pruned(value: Any) -> Any:
    """Drop nulls and empty containers: absent and empty mean the same to the spec model."""
    if isinstance(value, dict):
        items = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in items.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def apply_defaults(schema: Schema, value: Any) -> Any:
    """Default `value` the way the API server does: absent fields get their `default`,
    recursively, including inside defaults just applied and inside list items."""
    if isinstance(value, dict) and schema.get("type") == "object":
        out = dict(value)
        properties: dict[str, Schema] = schema.get("properties", {})
        for key, sub in properties.items():
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
            if key in out:
                out[key] = apply_defaults(sub, out[key])
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for key in out.keys() - properties.keys():
                out[key] = apply_defaults(additional, out[key])
        return out
    if isinstance(value, list) and "items" in schema:
        return [apply_defaults(schema["items"], item) for item in value]
    return value


def _reduce_object_defaults(schema: Schema) -> None:
    for sub in schema.get("properties", {}).values():
        _reduce_object_defaults(sub)
        default = sub.get("default")
        # The API server evaluates an object's CEL rules against its default as written, without
        # nested defaults, so an object with rules keeps its complete default.
        if "x-kubernetes-validations" in sub:
            continue
        if isinstance(default, dict) and sub.get("type") == "object" and "properties" in sub:
            bare = {k: v for k, v in sub.items() if k != "default"}
            if _pruned(apply_defaults(bare, {})) == _pruned(default):
                sub["default"] = {}
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _reduce_object_defaults(schema[key])


def unbounded(schema: Schema, path: str = "") -> list[str]:
    """Paths of strings without maxLength/enum, lists without maxItems, maps without
    maxProperties: each one makes CEL cost estimation fail or is an unchecked input."""
    found: list[str] = []
    kind = schema.get("type")
    if kind == "string" and "maxLength" not in schema and "enum" not in schema:
        found.append(path or ".")
    if kind == "array":
        if "maxItems" not in schema:
            found.append(path)
        found += unbounded(schema.get("items", {}), f"{path}[]")
    if kind == "object":
        additional = schema.get("additionalProperties")
        free_form = schema.get("x-kubernetes-preserve-unknown-fields", False)
        if "properties" not in schema and additional is None and not free_form:
            found.append(f"{path} (object without fields: the API server would prune it)")
        if isinstance(additional, dict):
            if "maxProperties" not in schema:
                found.append(path)
            found += unbounded(additional, f"{path}{{}}")
        for key, sub in schema.get("properties", {}).items():
            found += unbounded(sub, f"{path}.{key}")
    return found


def undescribed(schema: Schema, path: str = "") -> list[str]:
    """Paths of properties without a description (`kubectl explain` would show nothing)."""
    found: list[str] = []
    for key, sub in schema.get("properties", {}).items():
        if not sub.get("description"):
            found.append(f"{path}.{key}")
        found += undescribed(sub, f"{path}.{key}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            found += undescribed(schema[key], path + ("[]" if key == "items" else "{}"))
    return found
