"""Generate the chart files that are copies or projections of the CRD, and the install bundle.

One source: ``crds/indexforge.io_indexforges.yaml`` (itself generated from the spec model).

* ``charts/indexforge-operator/crds/…`` — a verbatim copy the operator chart installs.
* ``charts/indexforge/values.schema.json`` — the CRD's spec schema as JSON Schema, so Helm
  rejects what the API server would reject (types, bounds, enums, patterns, unknown keys).
* ``charts/indexforge/values.yaml`` — every spec key with its default and description.
* ``charts/indexforge/files/spec-defaults.json`` — the defaulting skeleton the chart applies
  the way the API server does (an object default only when the object is absent).
* ``charts/*/README.md`` — usage and a table of every value (see ``hack.chart_readme``).
* ``charts/indexforge/files/redis-replication-init.sh`` — the state Redis's init step.
* ``charts/indexforge/files/redis-acl-sync.sh`` — the Redis pods' ACL password sync sidecar.
* ``manifests/install.yaml`` — ``helm template`` of the operator chart (needs helm).

The static chart also has a few values that are not spec fields (``CHART_ONLY``, e.g. where
its generated credentials come from). They are described here, in the same schema form,
appended after the spec's keys in values.yaml, values.schema.json and the README, and kept out
of spec-defaults.json; the chart's ``indexforge.spec`` helper leaves them out of the spec.

Usage: ``python -m hack.charts`` writes everything; ``--check`` writes nothing and exits 1
listing stale files (CI); ``--no-install`` skips the helm-dependent bundle.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hack import chart_readme, monitoring_files
from indexforge_operator.builders.redis_acl import ACL_SYNC_SCRIPT
from indexforge_operator.builders.redis_replication import INIT_SCRIPT

REPO = Path(__file__).resolve().parents[1]
CRD_SOURCE = REPO / "crds" / "indexforge.io_indexforges.yaml"
OPERATOR_CHART = REPO / "charts" / "indexforge-operator"
STATIC_CHART = REPO / "charts" / "indexforge"
CRD_COPY = OPERATOR_CHART / "crds" / CRD_SOURCE.name
VALUES_SCHEMA = STATIC_CHART / "values.schema.json"
VALUES_YAML = STATIC_CHART / "values.yaml"
SPEC_DEFAULTS = STATIC_CHART / "files" / "spec-defaults.json"
STATIC_README = STATIC_CHART / "README.md"
OPERATOR_README = OPERATOR_CHART / "README.md"
INSTALL_YAML = REPO / "manifests" / "install.yaml"
INSTALL_NAMESPACE = "indexforge-system"
INSTALL_RELEASE = "indexforge-operator"
# Helm built without its Kubernetes version ldflags assumes v1.20; render for the version we test.
KUBE_VERSION = "v1.36.3"

Schema = dict[str, Any]
# JSON Schema keywords the CRD uses that mean the same thing to Helm's validator.
_KEEP = (
    "type", "description", "default", "enum", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "minLength", "maxLength", "pattern", "minItems", "maxItems",
    "uniqueItems", "minProperties", "maxProperties", "required", "format", "nullable",
)  # fmt: skip
# Spec fields that mean something only to the operator.
_STATIC_NOTES = {
    "paused": "Operator only: ignored by this chart (helm has no reconcile loop to pause).",
    "secrets.provider": "This chart: vault fails the release (only the operator can write "
    "generated values to Vault; seed Vault and use externalSecrets); externalSecrets renders "
    "the operator's ExternalSecrets and SecretStore; not together with "
    "credentials.existingSecret.",
}
# Keys of the existing-credentials Secret (templates/_credentials.tpl, `indexforge credentials`).
_CREDENTIAL_KEYS = (
    "`gateway-tokens` (the tokens the services accept, one per line, newest first), "
    "`gateway-token` (the one Kong sends: the first line of `gateway-tokens`), "
    "for each of redis-app, redis-ml and redis-state: `<instance>-password`, "
    "`<instance>-passwords` (the passwords Redis accepts, one per line: that password and "
    "a newline) and `<instance>.conf` (the lines `user default on ><password> ~* &* +@all` "
    "and `masterauth <password>`), `weaviate-api-key`, "
    "`consumer-<username>` for each gateway.keyAuth consumer, `grafana-admin-password`, and "
    "with messaging.enabled `rabbitmq-username`, `rabbitmq-password`, `rabbitmq-auth.conf` "
    "(RabbitMQ's default-user conf.d file with them) and `rabbitmq-erlang-cookie`"
)
_DNS_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = rf"{_DNS_LABEL}(\.{_DNS_LABEL})*"  # a Secret's name
# Values of the static chart that are not IndexForge spec fields, as a CRD-style schema node.
CHART_ONLY: Schema = {
    "type": "object",
    "properties": {
        "credentials": {
            "type": "object",
            "default": {},
            "description": "Chart only (no spec field; the operator keeps its generated values "
            "in Secrets it owns): where the generated credentials come from. Unset, the chart "
            "generates Kong consumer keys, the Grafana admin password and the internal "
            "credentials (gateway tokens, Redis passwords, Weaviate API key) into its own "
            "Secrets and keeps them across `helm upgrade` by looking them up; `helm template` "
            "cannot look up, so every render (Argo CD, Flux, any GitOps renderer) would "
            "generate new ones and rotate them on every sync.",
            "properties": {
                "existingSecret": {
                    "type": "string",
                    "default": "",
                    "maxLength": 253,
                    "pattern": f"^({_DNS_SUBDOMAIN})?$",  # empty: not set
                    "description": "Name of a Secret in the release namespace, created before "
                    "the install, that holds every credential; the chart then renders no "
                    "secret value and `helm template` gives the same output on every render. "
                    "Create it with `indexforge credentials --release <release> --namespace "
                    "<namespace> [-f values.yaml] | kubectl apply -f -` (or seal/encrypt that "
                    f"output for Git). Keys: {_CREDENTIAL_KEYS}. Values are URL-safe tokens "
                    "without a trailing newline. Kong then reads its config from an environment "
                    "variable whose secret parts are references (see templates/gateway.yaml).",
                },
            },
        },
    },
}


def helm_binary() -> Path:
    return Path(os.environ.get("HELM", REPO / ".tools" / "bin" / "helm"))


def load_crd() -> dict[str, Any]:
    if not CRD_SOURCE.exists():
        raise SystemExit(f"{CRD_SOURCE.relative_to(REPO)} is missing: run `indexforge crd` first")
    crd: dict[str, Any] = yaml.safe_load(CRD_SOURCE.read_text())
    return crd


def spec_schema(crd: dict[str, Any]) -> Schema:
    versions = crd["spec"]["versions"]
    storage = next(v for v in versions if v.get("storage"))
    schema: Schema = storage["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


# --- values.schema.json ----------------------------------------------------------------


def to_json_schema(node: Schema) -> Schema:
    """OpenAPI v3 structural schema -> JSON Schema (draft 7) Helm validates values with.

    Objects with fixed properties get ``additionalProperties: false``: the operator's model
    rejects unknown keys, and a typo in a values file should fail rather than be ignored.
    ``nullable`` becomes a type union, CEL rules stay with the CRD (the chart re-checks them
    in ``_validate.tpl``).
    """
    out: Schema = {k: node[k] for k in _KEEP if k in node and k != "nullable"}
    # OpenAPI 3.0 writes exclusive bounds as booleans beside minimum/maximum; draft 7 as numbers.
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if out.get(bound) is True and limit in out:
            out[bound] = out.pop(limit)
        elif out.get(bound) is False:
            del out[bound]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if "properties" in node:
        out["properties"] = {k: to_json_schema(v) for k, v in node["properties"].items()}
        out["additionalProperties"] = False
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = to_json_schema(node["additionalProperties"])
    if "items" in node:
        out["items"] = to_json_schema(node["items"])
    return out


def values_schema(spec: Schema) -> Schema:
    root = to_json_schema(spec)
    root["properties"].update(to_json_schema(CHART_ONLY)["properties"])
    # Helm adds `global` to the values of every chart used as a subchart.
    root["properties"]["global"] = {"type": "object", "description": "Helm global values."}
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "IndexForge static chart values (the IndexForge spec)",
        **root,
    }


# --- spec-defaults.json ------------------------------------------------------------------


def defaults_skeleton(node: Schema) -> Schema:
    """Only what defaulting needs: `default`, and where to descend (properties/items/maps)."""
    out: Schema = {}
    if "default" in node:
        out["d"] = node["default"]
    props = {k: defaults_skeleton(v) for k, v in node.get("properties", {}).items()}
    props = {k: v for k, v in props.items() if v}
    if props:
        out["p"] = props
    if "items" in node:
        items = defaults_skeleton(node["items"])
        if items:
            out["i"] = items
    if isinstance(node.get("additionalProperties"), dict):
        extra = defaults_skeleton(node["additionalProperties"])
        if extra:
            out["a"] = extra
    return out


# --- values.yaml --------------------------------------------------------------------------


def _is_object_default(node: Schema) -> bool:
    """An object whose default differs from what its fields default to on their own.

    Helm deep-merges a user's values into values.yaml, but the API server applies such a
    default only when the whole object is absent. Leaving it out of values.yaml (the chart's
    defaulting fills it in) keeps `-f spec.yaml` meaning exactly what it means in a CR.
    """
    if node.get("type") != "object" or not node.get("default") or "properties" not in node:
        return False
    return bool(apply_defaults(node, node["default"]) != apply_defaults(node, {}))


def apply_defaults(node: Schema, value: Any) -> Any:
    """The API server's structural defaulting of `value` (what the chart's helper does)."""
    if isinstance(value, dict) and "properties" in node:
        out = dict(value)
        for key, child in node["properties"].items():
            if key in out:
                out[key] = apply_defaults(child, out[key])
            elif "default" in child:
                out[key] = apply_defaults(child, child["default"])
        return out
    if isinstance(value, list) and "items" in node:
        return [apply_defaults(node["items"], item) for item in value]
    return value


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _comment(text: str, indent: str) -> list[str]:
    """Comment lines of at most 100 characters (a longer word keeps its own line)."""
    width = max(100 - len(indent) - 2, 40)
    lines = [
        part
        for line in text.splitlines()
        for part in textwrap.wrap(line, width, break_on_hyphens=False) or [""]
    ]
    return [f"{indent}# {line}".rstrip() for line in lines]


def _values_lines(node: Schema, depth: int, path: str) -> Iterator[str]:
    indent = "  " * depth
    for key, child in node.get("properties", {}).items():
        dotted = f"{path}{key}"
        desc = child.get("description", "")
        note = _STATIC_NOTES.get(dotted)
        if depth == 0:
            yield ""
        has_fields = child.get("type") == "object" and "properties" in child
        if _is_object_default(child):
            note = "Default when unset (setting it replaces the whole object, as in a CR):"
        yield from _comment(f"-- {desc}" + (f" {note}" if note else ""), indent)
        if _is_object_default(child):
            yield f"{indent}# {key}: {_scalar(child['default'])}"
        elif has_fields and "default" in child:
            inner = list(_values_lines(child, depth + 1, dotted + "."))
            # Every field unset: an empty mapping, not YAML null (the schema wants an object).
            empty = all(not line.strip() or line.lstrip().startswith("#") for line in inner)
            yield f"{indent}{key}: {{}}" if empty else f"{indent}{key}:"
            yield from inner
        elif "default" in child:
            yield f"{indent}{key}: {_scalar(child['default'])}"
        elif child.get("type") == "array":
            yield f"{indent}{key}: []"
        elif child.get("type") == "object" and not has_fields:
            yield f"{indent}{key}: {{}}"
        else:
            example = {"object": "{}", "string": '""'}.get(child.get("type", ""), "null")
            yield f"{indent}# {key}: {example}  (unset by default)"


def values_yaml(spec: Schema) -> str:
    header = [
        "# Values of the IndexForge static chart: exactly the keys of an IndexForge CR's `spec`,",
        "# so a CR's spec block saved as a file works as `helm install -f spec.yaml`, and the",
        "# other way round; chart-only values come last. GENERATED by `python -m hack.charts`",
        "# from crds/indexforge.io_indexforges.yaml (descriptions and defaults come from the spec",
        "# model) and hack/charts.py (CHART_ONLY); do not edit by hand. values.schema.json holds",
        "# the bounds, enums and patterns.",
    ]
    chart_only = [
        "",
        "# ---- Chart-only values: not part of the IndexForge spec (leave them out of a CR) ----",
    ]
    lines = [*header, *_values_lines(spec, 0, ""), *chart_only, *_values_lines(CHART_ONLY, 0, "")]
    return "\n".join(lines) + "\n"


# --- README.md ----------------------------------------------------------------------------


def _object_defaults(node: Schema, path: str = "") -> Iterator[str]:
    for key, child in node.get("properties", {}).items():
        if _is_object_default(child):
            yield f"{path}{key}"
        yield from _object_defaults(child, f"{path}{key}.")


def static_readme(spec: Schema) -> str:
    rows = [
        *chart_readme.schema_rows(spec, notes=_STATIC_NOTES, replaces=set(_object_defaults(spec))),
        *chart_readme.schema_rows(CHART_ONLY, notes={}, replaces=set()),
    ]
    return chart_readme.render(
        title=STATIC_CHART.name,
        intro=chart_readme.STATIC_USAGE.format(
            description=chart_readme.chart_description(STATIC_CHART)
        ),
        rows=rows,
        source="crds/indexforge.io_indexforges.yaml (the spec schema behind values.yaml) and "
        "hack/charts.py (chart-only values)",
    )


def operator_readme() -> str:
    schema = json.loads((OPERATOR_CHART / "values.schema.json").read_text())
    rows = chart_readme.values_rows((OPERATOR_CHART / "values.yaml").read_text(), schema)
    return chart_readme.render(
        title=OPERATOR_CHART.name,
        intro=chart_readme.OPERATOR_USAGE.format(
            description=chart_readme.chart_description(OPERATOR_CHART)
        ),
        rows=list(rows),
        source="values.yaml comments and values.schema.json",
    )


# --- install.yaml -----------------------------------------------------------------------------


def install_yaml() -> str:
    helm = helm_binary()
    if not helm.exists():
        raise SystemExit(f"{helm} not found: run `make tools` first")
    cmd = [str(helm), "template", INSTALL_RELEASE, str(OPERATOR_CHART)]
    cmd += ["--include-crds", "--skip-tests", "--namespace", INSTALL_NAMESPACE]
    cmd += ["--kube-version", KUBE_VERSION, "--set", "namespace.create=true"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode != 0:
        raise SystemExit(f"helm template failed:\n{proc.stderr}")
    header = (
        "# IndexForge operator: CRD, namespace, RBAC and Deployment.\n"
        "#   kubectl apply --server-side -f manifests/install.yaml\n"
        f"# GENERATED by `python -m hack.charts` (helm template of charts/indexforge-operator,\n"
        f"# namespace {INSTALL_NAMESPACE}); do not edit by hand.\n"
    )
    return header + proc.stdout


# --- driver -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    path: Path
    content: str


def outputs() -> list[Output]:
    """Files derived from the CRD alone (no helm needed)."""
    crd = load_crd()
    spec = spec_schema(crd)
    out = [
        Output(CRD_COPY, CRD_SOURCE.read_text()),
        Output(VALUES_SCHEMA, json.dumps(values_schema(spec), indent=2) + "\n"),
        Output(VALUES_YAML, values_yaml(spec)),
        Output(SPEC_DEFAULTS, json.dumps(defaults_skeleton(spec), sort_keys=True) + "\n"),
        Output(STATIC_README, static_readme(spec)),
        Output(OPERATOR_README, operator_readme()),
    ]
    out += [Output(path, text) for path, text in monitoring_files.outputs(STATIC_CHART)]
    # The replicated state Redis's init step, byte for byte the operator's.
    out.append(Output(STATIC_CHART / "files" / "redis-replication-init.sh", INIT_SCRIPT))
    out.append(Output(STATIC_CHART / "files" / "redis-acl-sync.sh", ACL_SYNC_SCRIPT))
    return out


def stale(items: list[Output]) -> list[str]:
    found = []
    for item in items:
        current = item.path.read_text() if item.path.exists() else None
        if current != item.content:
            found.append(
                str(item.path.relative_to(REPO) if item.path.is_relative_to(REPO) else item.path)
            )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.charts", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a file is stale")
    parser.add_argument("--no-install", action="store_true", help="skip manifests/install.yaml")
    args = parser.parse_args(argv)
    items = outputs()
    if args.check:
        bad = stale(items)
        if not args.no_install:
            bad += stale([Output(INSTALL_YAML, install_yaml())])
        if bad:
            print("stale generated files (run `python -m hack.charts`):", *bad, sep="\n  ")
            return 1
        return 0
    for item in items:
        item.path.parent.mkdir(parents=True, exist_ok=True)
        item.path.write_text(item.content)
    if not args.no_install:
        # After the copies above: the bundle embeds the operator chart's CRD copy.
        INSTALL_YAML.parent.mkdir(parents=True, exist_ok=True)
        INSTALL_YAML.write_text(install_yaml())
    return 0


if __name__ == "__main__":
    sys.exit(main())
