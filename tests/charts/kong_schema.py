"""Validate a Kong declarative config against Kong's own published JSON schemas.

Kong cannot run here, so the check comes from something we did not write: the decK file
schema (whole document) and Kong's per-plugin schemas (each plugin's `config`), both read
from `../shared/reference/kong/` at test time and never copied into the repository. Plugin
schemas leave `additionalProperties` open; Kong itself rejects unknown config fields, so the
validator closes every object that lists its properties (a typo then fails here, not in a pod).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import jsonschema

from tests.reference import reference_dir

REFERENCE = reference_dir() / "kong"
SCHEMA_VERSION = "3.9"  # the plugin schema directory the deployed Kong image must match

# Plugin name -> schema file stem (Kong's docs name files after the plugin's class).
PLUGIN_FILES = {
    "acl": "Acl",
    "bot-detection": "BotDetection",
    "correlation-id": "CorrelationId",
    "cors": "Cors",
    "ip-restriction": "IpRestriction",
    "key-auth": "KeyAuth",
    "opentelemetry": "Opentelemetry",
    "prometheus": "Prometheus",
    "proxy-cache": "ProxyCache",
    "rate-limiting": "RateLimiting",
    "request-size-limiting": "RequestSizeLimiting",
    "request-transformer": "RequestTransformer",
    "response-transformer": "ResponseTransformer",
}

Obj = dict[str, Any]


def closed(node: Any) -> Any:
    """A copy where every object schema with `properties` rejects keys it does not list."""
    if isinstance(node, dict):
        out = {k: closed(v) for k, v in node.items()}
        if isinstance(out.get("properties"), dict) and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [closed(v) for v in node]
    return node


@cache
def document_schema() -> Obj:
    schema: Obj = json.loads((REFERENCE / "kong_json_schema.json").read_text())
    return schema


@cache
def plugin_schema(name: str) -> Obj:
    stem = PLUGIN_FILES.get(name)
    if stem is None:
        raise KeyError(f"no reference schema known for Kong plugin {name!r}")
    raw = json.loads((REFERENCE / "plugins" / SCHEMA_VERSION / f"{stem}.json").read_text())
    config = closed(raw["properties"]["config"])
    return {"type": "object", "properties": {"config": config}, "required": ["config"]}


def plugins(config: Obj) -> Iterator[tuple[str, Obj]]:
    """(where, plugin) for global, service and route plugins."""
    for plugin in config.get("plugins") or []:
        yield "plugins", plugin
    for service in config.get("services") or []:
        for plugin in service.get("plugins") or []:
            yield f"services[{service.get('name')}]", plugin
        for route in service.get("routes") or []:
            for plugin in route.get("plugins") or []:
                yield f"routes[{route.get('name')}]", plugin


def problems(config: Obj) -> list[str]:
    """Every schema violation, each prefixed with where it is; empty when Kong would accept."""
    found = [
        f"document: {e.json_path}: {e.message}"
        for e in jsonschema.Draft4Validator(document_schema()).iter_errors(config)
    ]
    for where, plugin in plugins(config):
        name = plugin.get("name", "?")
        try:
            schema = plugin_schema(name)
        except KeyError as exc:
            found.append(f"{where}.{name}: {exc}")
            continue
        validator = jsonschema.Draft4Validator(schema)
        found += [
            f"{where}.{name}: {e.json_path}: {e.message}"
            for e in validator.iter_errors({"config": copy.deepcopy(plugin.get("config") or {})})
        ]
    return found


def image_minor(image: str) -> str:
    """'kong:3.9.1' -> '3.9' (the tag's major.minor)."""
    match = re.search(r":(\d+)\.(\d+)", image)
    if not match:
        raise ValueError(f"Kong image {image!r} has no version tag")
    return f"{match.group(1)}.{match.group(2)}"
