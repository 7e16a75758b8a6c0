"""JSON schemas for kubeconform, made offline from sources on this machine.

* Built-in kinds: the local API server's OpenAPI v3 documents (`/openapi/v3/<group-version>`),
  each kind's schema bundled with the definitions it references.
* Custom resources: the `openAPIV3Schema` of CRD files — the prometheus-operator CRDs
  (ServiceMonitor, PrometheusRule) from its Go module in the module cache (fetched through the
  Go module proxy on a cold machine), and the IndexForge CRD from `crds/`.

Schemas are strict (objects with known properties reject unknown ones), and written where
kubeconform's `-schema-location <dir>/LOCATION_TEMPLATE` finds them.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

Schema = dict[str, Any]
PROMETHEUS_OPERATOR_MODULE = "github.com/prometheus-operator/prometheus-operator"
PROMETHEUS_OPERATOR_VERSION = "v0.85.0"
PROMETHEUS_OPERATOR_CRDS = ("monitoring.coreos.com_servicemonitors.yaml",
                            "monitoring.coreos.com_prometheusrules.yaml")  # fmt: skip
LOCATION_TEMPLATE = "{{ .Group }}/{{ .ResourceAPIVersion }}/{{ .ResourceKind }}.json"
_REF_PREFIX = "#/components/schemas/"


def schema_path(root: Path, api_version: str, kind: str) -> Path:
    """Where kubeconform looks (its Group is the part before '/', or 'v1' for the core group)."""
    group, _, version = api_version.rpartition("/")
    return root / (group or version) / version / f"{kind.lower()}.json"


def strict(node: Any) -> Any:
    """OpenAPI -> JSON Schema: nullable as a type union; closed objects; $refs to definitions."""
    if isinstance(node, list):
        return [strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict(v) for k, v in node.items()}
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
        out["$ref"] = "#/definitions/" + ref.removeprefix(_REF_PREFIX)
    # OpenAPI 3.0 writes exclusive bounds as booleans beside minimum/maximum; draft 7 as numbers.
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if out.get(bound) is True and limit in out:
            out[bound] = out.pop(limit)
        elif out.get(bound) is False:
            del out[bound]
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    open_ended = out.get("x-kubernetes-preserve-unknown-fields") or "additionalProperties" in out
    if "properties" in out and not open_ended:
        out["additionalProperties"] = False
    return out


def _refs(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            yield ref.removeprefix(_REF_PREFIX)
        for v in node.values():
            yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def bundle(name: str, schemas: dict[str, Schema]) -> Schema:
    """One kind's schema with every definition it reaches."""
    needed: dict[str, Schema] = {}
    todo = [name]
    while todo:
        current = todo.pop()
        if current in needed:
            continue
        needed[current] = schemas[current]
        todo.extend(_refs(schemas[current]))
    root: Schema = strict(schemas[name])
    root["definitions"] = {k: strict(v) for k, v in needed.items()}
    root["$schema"] = "http://json-schema.org/draft-07/schema#"
    return root


def write_openapi_v3(root: Path, fetch: Callable[[str], dict[str, Any]]) -> int:
    """Schemas of every kind the API server serves; `fetch(path)` GETs JSON. Returns a count."""
    count = 0
    for info in fetch("/openapi/v3")["paths"].values():
        doc = fetch(info["serverRelativeURL"])
        schemas: dict[str, Schema] = doc.get("components", {}).get("schemas", {})
        for name, schema in schemas.items():
            for gvk in schema.get("x-kubernetes-group-version-kind", []):
                group, version, kind = gvk.get("group", ""), gvk["version"], gvk["kind"]
                api_version = f"{group}/{version}" if group else version
                path = schema_path(root, api_version, kind)
                if path.exists():
                    continue  # the same kind appears in several documents
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(bundle(name, schemas)))
                count += 1
    return count


def write_crd(root: Path, crd: dict[str, Any]) -> list[str]:
    """One schema per served version of a CRD; returns the `apiVersion/Kind`s written."""
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    written = []
    for version in crd["spec"]["versions"]:
        schema = dict(version["schema"]["openAPIV3Schema"])
        props = dict(schema.get("properties", {}))
        # The API server serves these for every CR; CRD files usually leave metadata open.
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props["metadata"] = {"type": "object"}
        schema["properties"] = props
        doc = strict(schema)
        doc["$schema"] = "http://json-schema.org/draft-07/schema#"
        path = schema_path(root, f"{group}/{version['name']}", kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc))
        written.append(f"{group}/{version['name']}/{kind}")
    return written


def prometheus_operator_crds() -> list[Path]:
    """The CRD files from the pinned prometheus-operator module (downloaded once, then cached)."""
    proc = subprocess.run(
        ["go", "mod", "download", "-json",
         f"{PROMETHEUS_OPERATOR_MODULE}@{PROMETHEUS_OPERATOR_VERSION}"],
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "GOFLAGS": "-mod=mod"}, cwd="/",
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"go mod download failed:\n{proc.stdout}\n{proc.stderr}")
    module_dir = Path(json.loads(proc.stdout)["Dir"])
    return [
        module_dir / "example" / "prometheus-operator-crd" / f for f in PROMETHEUS_OPERATOR_CRDS
    ]


def load_yaml(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc
