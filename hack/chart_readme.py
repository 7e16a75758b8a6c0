"""Generate each chart's README.md: a short usage header and a table of every value.

* Static chart: the values are the IndexForge spec, so the rows come from the CRD's spec
  schema (the source of its values.yaml and values.schema.json): every field, its type, its
  default and its description.
* Operator chart: values.yaml is hand-written; the rows come from its `# --` comments (the
  helm-docs convention the chart tests already require) and its values, types from its
  values.schema.json. A commented mapping (e.g. `resources`) is one row; an uncommented one is
  a group whose children are rows.

`hack.charts` writes and checks these files with the other generated chart files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Schema = dict[str, Any]
_KEY_LINE = re.compile(r"^(\s*)([A-Za-z][\w.-]*):")


@dataclass(frozen=True)
class Row:
    key: str
    type: str
    default: str
    description: str


class UndocumentedValues(ValueError):
    """A value without a description: the README would be a list of bare names."""


# --- rows of the static chart (from the spec schema) -----------------------------------------


def _type(node: Schema) -> str:
    if "enum" in node:
        return " | ".join(str(v) for v in node["enum"])
    kind = str(node.get("type", "object"))
    if kind == "array":
        return f"list of {_type(node.get('items', {}))}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map of {_type(node['additionalProperties'])}"
    return kind


def _default(value: Any) -> str:
    return f"`{json.dumps(value, separators=(', ', ': '))}`"


def _absent(node: Schema) -> str:
    """What an unset field amounts to: an empty list or map (as values.yaml shows), or nothing."""
    if node.get("type") == "array":
        return "`[]`"
    if node.get("type") == "object":
        return "`{}`"
    return "unset"


def schema_rows(
    node: Schema, *, notes: dict[str, str], replaces: set[str], path: str = ""
) -> Iterator[Row]:
    """Every property under `node`, depth first. `replaces`: objects whose default replaces the
    nested defaults (the values.yaml note); `notes`: extra text per dotted key."""
    for key, child in node.get("properties", {}).items():
        dotted = f"{path}{key}"
        description = " ".join(filter(None, [child.get("description", ""), notes.get(dotted)]))
        has_fields = child.get("type") == "object" and "properties" in child
        if dotted in replaces:
            description += " Setting it replaces the whole default object, as in a CR."
        if has_fields and dotted not in replaces:
            yield Row(dotted, "object", "", description)
        else:
            shown = _default(child["default"]) if "default" in child else _absent(child)
            yield Row(dotted, _type(child), shown, description)
        if has_fields:
            yield from schema_rows(child, notes=notes, replaces=replaces, path=f"{dotted}.")
        elif child.get("type") == "array" and "properties" in child.get("items", {}):
            # Fields of list items (tolerations, consumers) are values too.
            yield from schema_rows(
                child["items"], notes=notes, replaces=replaces, path=f"{dotted}[]."
            )


# --- rows of a hand-written values.yaml (`# --` comments) --------------------------------------


def _comments(lines: list[str], index: int) -> str:
    """The `# --` description right above line `index` (with its continuation lines)."""
    block: list[str] = []
    j = index - 1
    while j >= 0 and lines[j].lstrip().startswith("#"):
        block.insert(0, lines[j].strip().removeprefix("#").strip())
        j -= 1
    for start, text in enumerate(block):
        if text.startswith("-- "):
            return " ".join([text.removeprefix("-- "), *block[start + 1 :]]).strip()
    return ""


def _lookup(tree: Any, path: list[str]) -> Any:
    for part in path:
        tree = tree[part]
    return tree


def _schema_type(schema: Schema, path: list[str], value: Any) -> str:
    node: Schema | None = schema
    for part in path:
        node = (node or {}).get("properties", {}).get(part)
    if node and ("type" in node or "enum" in node):
        return _type(node)
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list"}
    return names.get(type(value), "object")


def values_rows(text: str, schema: Schema) -> Iterator[Row]:
    """Rows of a values.yaml: documented keys (a documented mapping is one row), and the
    undocumented leaves (empty description) so the caller can refuse them."""
    values = yaml.safe_load(text) or {}
    lines = text.splitlines()
    stack: list[tuple[int, str, bool]] = []  # (indent, key, documented) of the open parents
    for i, line in enumerate(lines):
        match = _KEY_LINE.match(line)
        if not match:
            continue
        indent = len(match.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = [k for _, k, _ in stack] + [match.group(2)]
        description = _comments(lines, i)
        inside_documented = any(documented for _, _, documented in stack)
        stack.append((indent, match.group(2), bool(description)))
        if inside_documented:
            continue  # part of a mapping documented as one row
        value = _lookup(values, path)
        if isinstance(value, dict) and value and not description:
            continue  # a group: its children are the rows
        yield Row(".".join(path), _schema_type(schema, path, value), _default(value), description)


# --- rendering -----------------------------------------------------------------------------


def _cell(text: str) -> str:
    # Markdown tables: a bare '|' ends the cell, and <release> would render as an HTML tag.
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def render(*, title: str, intro: str, rows: list[Row], source: str) -> str:
    missing = [r.key for r in rows if not r.description]
    if missing:
        raise UndocumentedValues(f"{title}: values without a description: {', '.join(missing)}")
    table = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    table += [
        f"| `{r.key}` | {_cell(r.type)} | {_cell(r.default)} | {_cell(r.description)} |"
        for r in rows
    ]
    notice = f"<!-- GENERATED by `python -m hack.charts` from {source}; do not edit. -->"
    return "\n".join([notice, f"# {title}", "", intro.strip(), "", "## Values", "", *table]) + "\n"


def chart_description(chart: Path) -> str:
    meta: dict[str, Any] = yaml.safe_load((chart / "Chart.yaml").read_text())
    return " ".join(str(meta.get("description", "")).split())


STATIC_USAGE = """
{description}

```bash
helm install search charts/indexforge -f my-spec.yaml        # release name = instance name
helm test search                                             # calls the API through Kong
```

The values are exactly the `spec` of an `IndexForge` custom resource: a CR's spec block saved
as a file is a values file, and `indexforge render -f cr.yaml` prints the objects the operator
would build from the same spec. Values the API server would reject in a CR fail here too
(`values.schema.json` and `templates/_validate.tpl`). Spec reference: the table below,
`kubectl explain indexforge.spec` once the CRD is installed, and the CRD itself
([crds/indexforge.io_indexforges.yaml](../../crds/indexforge.io_indexforges.yaml)).
Values that are not spec fields (chart only) come last in the table and in `values.yaml`.

### Generated credentials and GitOps

The stack needs credentials nobody types in: Kong consumer keys, the Grafana admin password,
and the internal ones every hop behind the NetworkPolicies authenticates with (the token Kong
adds for the services, the Redis passwords, the Weaviate API key).

* By default the chart generates them into its own Secrets and keeps them across
  `helm upgrade` (it looks the previous values up). `helm template` cannot look anything up,
  so GitOps tools that render with it (Argo CD, Flux's `helm template` mode) would get new
  values on every render and rotate every credential on every sync.
* For those, create the credentials once, before the install, and point the chart at them:

  ```bash
  indexforge credentials --release search --namespace search -f my-spec.yaml \\
    | kubectl apply -f -            # or seal/encrypt the output and commit it
  helm template search charts/indexforge -n search -f my-spec.yaml \\
    --set credentials.existingSecret=search-credentials
  ```

  The chart then renders no secret value at all (every reference points at that Secret) and
  its output is the same on every render. Kong's config then comes from an environment
  variable whose secret parts are references resolved in the pod. The Secret's keys are
  listed under `credentials.existingSecret` below; add a `consumer-<username>` key when you
  add a gateway consumer. Create it again with `-f` once `messaging.enabled` is turned on
  (it then also holds RabbitMQ's default user and Erlang cookie).

### Optional integrations (monitoring, messaging)

Like the operator, the chart looks at which APIs the cluster serves
(`.Capabilities.APIVersions`; `helm template` learns them from `--api-versions`):
ServiceMonitors and a PrometheusRule instead of its own Prometheus when
`monitoring.coreos.com/v1/ServiceMonitor` is served; with `messaging.enabled`, a
`RabbitmqCluster` instead of the built-in RabbitMQ StatefulSet when
`rabbitmq.com/v1beta1/RabbitmqCluster` is served (`messaging.provider: auto`), and a KEDA
`ScaledObject` instead of a CPU HPA for the workers when `keda.sh/v1alpha1/ScaledObject` is
(`messaging.workers.scaler: auto`). Forcing `provider: rabbitmqClusterOperator` or
`scaler: keda` where that API is not served fails the release with the reason (the operator
reports it as `Degraded`).

```bash
helm template search charts/indexforge -n search -f my-spec.yaml \
  --api-versions rabbitmq.com/v1beta1/RabbitmqCluster --api-versions keda.sh/v1alpha1/ScaledObject
```
"""

OPERATOR_USAGE = """
{description}

```bash
helm install indexforge-operator charts/indexforge-operator \\
  -n indexforge-system --create-namespace
# the same without helm:
kubectl apply --server-side -f manifests/install.yaml
```

Then create `IndexForge` resources (`manifests/samples/`); their spec is documented in the
[static chart's README](../indexforge/README.md#values) (its values are the spec) and by
`kubectl explain indexforge.spec`. The CRD is in `crds/` and is never deleted by helm.
"""
