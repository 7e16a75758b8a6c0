"""Compare the static chart's objects with the operator's: normalisation and a readable diff.

What legitimately differs between `helm template` and `indexforge render` is normalised
away, and nothing else:
* ownerReferences (the operator's reconciler adds them) and the managed-by label;
* generated secret values (Kong consumer keys, the Grafana admin password, the internal
  credentials: gateway tokens, Redis passwords, the Weaviate API key, RabbitMQ's password and
  Erlang cookie), wherever they appear: in their Secrets, inside files built from them
  (Redis's requirepass files, RabbitMQ's default-user file) and inside
  Kong's declarative config (consumer keys, the gateway token header, the Redis password);
* config files inside ConfigMaps/Secrets (*.yml, *.yaml, *.json) are compared parsed: Helm's
  YAML/JSON printers lay out the same config differently from PyYAML. For the components
  whose config is such a file (or holds generated keys) the config-checksum annotation,
  which hashes the text, is compared for presence only; Redis's redis.conf is plain text
  and its checksum must match exactly.
* the files inside an ExternalSecret's target template (secrets.provider externalSecrets) are
  compared parsed too.
Helm test hooks are not part of the stack and are dropped.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Iterable
from typing import Any

import yaml

Obj = dict[str, Any]
Key = tuple[str, str, str]
MANAGED_BY = "app.kubernetes.io/managed-by"
CHECKSUM = "indexforge.io/config-checksum"
GENERATED = "<generated>"
GENERATED_SECRET_SUFFIXES = ("-gateway-consumers",)
GENERATED_SECRET_KEYS = {
    "-grafana-admin": ("admin-password",),
    "-rabbitmq-app-user": ("password",),
}
# Secrets whose generated values also appear inside other keys' text (redis-*.conf): each value
# is replaced wherever it occurs, so the text around it is still compared.
GENERATED_VALUE_SECRETS = {
    "-internal-auth": ("gateway-tokens", "redis-app-password", "redis-ml-password",
                       "redis-state-password", "weaviate-api-key", "rabbitmq-password",
                       "rabbitmq-erlang-cookie"),
}  # fmt: skip
GATEWAY_TOKEN_HEADER = "X-IndexForge-Gateway-Token"
COMPONENT = "app.kubernetes.io/component"
SERIALISED_CONFIG = frozenset({"gateway", "prometheus", "grafana", "alertmanager", "jaeger"})


def load_stream(text: str) -> list[Obj]:
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def key(obj: Obj) -> Key:
    meta = obj.get("metadata", {})
    return (obj.get("kind", "?"), meta.get("namespace", ""), meta.get("name", "?"))


def _strip_labels(meta: Obj) -> None:
    labels = meta.get("labels")
    if isinstance(labels, dict):
        labels.pop(MANAGED_BY, None)
    annotations = meta.get("annotations")
    component = (labels or {}).get(COMPONENT)
    if isinstance(annotations, dict) and CHECKSUM in annotations and component in SERIALISED_CONFIG:
        annotations[CHECKSUM] = "<checksum of serialised config>"


def _walk_metadata(node: Any) -> None:
    """Every `metadata` mapping at any depth (objects, pod templates, claim templates)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "metadata" and isinstance(v, dict):
                _strip_labels(v)
            _walk_metadata(v)
    elif isinstance(node, list):
        for item in node:
            _walk_metadata(item)


def _parse_file(name: str, text: str) -> Any:
    if name.endswith((".yml", ".yaml")):
        return yaml.safe_load(text)
    if name.endswith(".json"):
        return json.loads(text)
    return text


# The store-value checks leading an ExternalSecret template (external_secrets.checks): compared
# as text; the file after them is parsed like any other.
_CHECKS = re.compile(r"((?:\{\{ if not \(regexMatch .*?\{\{ end \}\})*)(.*)", re.DOTALL)


def _template_file(name: str, text: str) -> Any:
    match = _CHECKS.fullmatch(text)
    assert match is not None
    checks, rest = match.groups()
    return {"checks": checks, "file": _parse_file(name, rest)}


def _kong_plugins(config: Any) -> list[Obj]:
    out = list(config.get("plugins") or [])
    for service in config.get("services") or []:
        out += service.get("plugins") or []
        for route in service.get("routes") or []:
            out += route.get("plugins") or []
    return out


def _kong(config: Any) -> Any:
    if not isinstance(config, dict):
        return config
    for consumer in config.get("consumers") or []:
        for cred in consumer.get("keyauth_credentials") or []:
            cred["key"] = GENERATED
    for plugin in _kong_plugins(config):
        cfg = plugin.get("config") or {}
        if plugin.get("name") == "request-transformer":
            add = cfg.get("add") or {}
            add["headers"] = [
                f"{GATEWAY_TOKEN_HEADER}:{GENERATED}"
                if h.startswith(f"{GATEWAY_TOKEN_HEADER}:")
                else h
                for h in add.get("headers") or []
            ]
        if plugin.get("name") == "rate-limiting" and "password" in (cfg.get("redis") or {}):
            cfg["redis"]["password"] = GENERATED
    return config


def _generated_values(data: dict[str, str], keys: Iterable[str]) -> dict[str, str]:
    values = {line for k in keys for line in data.get(k, "").splitlines() if line}
    # Longest first: a value that contains another is replaced whole.
    for value in sorted(values, key=len, reverse=True):
        data = {k: v.replace(value, GENERATED) for k, v in data.items()}
    return data


def normalise(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    out.get("metadata", {}).pop("ownerReferences", None)
    _walk_metadata(out)
    name = out.get("metadata", {}).get("name", "")
    if out.get("kind") == "ConfigMap":
        out["data"] = {k: _parse_file(k, v) for k, v in (out.get("data") or {}).items()}
    if out.get("kind") == "Secret":
        data = {k: base64.b64decode(v).decode() for k, v in (out.get("data") or {}).items()}
        for k, v in out.pop("stringData", {}).items():
            data[k] = v
        if name.endswith(GENERATED_SECRET_SUFFIXES):
            data = dict.fromkeys(data, GENERATED)
        for suffix, keys in GENERATED_SECRET_KEYS.items():
            if name.endswith(suffix):
                data.update({k: GENERATED for k in keys if k in data})
        for suffix, value_keys in GENERATED_VALUE_SECRETS.items():
            if name.endswith(suffix):
                data = _generated_values(data, value_keys)
        parsed = {k: _parse_file(k, v) for k, v in data.items()}
        if "kong.yml" in parsed:
            parsed["kong.yml"] = _kong(parsed["kong.yml"])
        out["data"] = parsed
    if out.get("kind") == "ExternalSecret":
        # secrets.provider externalSecrets: the Secret's files are in the template, with
        # template expressions instead of values on both sides (compared parsed, as above).
        template = out.get("spec", {}).get("target", {}).get("template", {})
        if "data" in template:
            template["data"] = {k: _template_file(k, v) for k, v in template["data"].items()}
    return out


def is_hook(obj: Obj) -> bool:
    return "helm.sh/hook" in (obj.get("metadata", {}).get("annotations") or {})


def index(objs: Iterable[Obj]) -> dict[Key, Obj]:
    return {key(o): normalise(o) for o in objs if not is_hook(o)}


def _diff(a: Any, b: Any, path: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            sub = f"{path}.{k}" if path else str(k)
            if k not in a:
                out.append(f"  {sub}: only in operator: {json.dumps(b[k])[:300]}")
            elif k not in b:
                out.append(f"  {sub}: only in chart: {json.dumps(a[k])[:300]}")
            else:
                _diff(a[k], b[k], sub, out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, f"{path}[{i}]", out)
    elif a != b or type(a) is not type(b):
        out.append(f"  {path}: chart {json.dumps(a)[:400]} != operator {json.dumps(b)[:400]}")


def compare(chart: Iterable[Obj], operator: Iterable[Obj]) -> list[str]:
    """Readable differences, one line per field, grouped by object; empty when equal."""
    left, right = index(chart), index(operator)
    lines: list[str] = []
    for k in sorted(set(left) | set(right)):
        label = "{} {}/{}".format(*k)
        if k not in right:
            lines.append(f"{label}: rendered by the chart only")
        elif k not in left:
            lines.append(f"{label}: rendered by the operator only")
        else:
            fields: list[str] = []
            _diff(left[k], right[k], "", fields)
            if fields:
                lines.append(f"{label}:")
                lines += fields
    return lines
