"""The charts' generated README.md files: current, complete, and refusing undocumented values."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from hack import chart_readme
from hack import charts as generator


def _table_keys(readme: str) -> list[str]:
    return re.findall(r"^\| `([^`]+)` \|", readme, flags=re.MULTILINE)


def _paths(node: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, child in node.get("properties", {}).items():
        out.append(f"{prefix}{key}")
        out += _paths(child, f"{prefix}{key}.")
        out += _paths(child.get("items", {}), f"{prefix}{key}[].")
    return out


def _leaves(tree: Any, prefix: str = "") -> list[str]:
    if not isinstance(tree, dict) or not tree:
        return [prefix.rstrip(".")]
    return [leaf for k, v in tree.items() for leaf in _leaves(v, f"{prefix}{k}.")]


def test_readmes_are_current() -> None:
    readmes = [o for o in generator.outputs() if o.path.name == "README.md"]
    assert {o.path for o in readmes} == {generator.STATIC_README, generator.OPERATOR_README}
    stale = generator.stale(readmes)
    assert not stale, f"stale: {stale}; run `python -m hack.charts`"


def test_static_readme_lists_every_spec_field() -> None:
    """Every spec field, then the chart-only values."""
    spec = generator.spec_schema(generator.load_crd())
    expected = _paths(spec) + _paths(generator.CHART_ONLY)
    assert _table_keys(generator.STATIC_README.read_text()) == expected


def test_operator_readme_covers_every_value() -> None:
    values = yaml.safe_load((generator.OPERATOR_CHART / "values.yaml").read_text())
    listed = _table_keys(generator.OPERATOR_README.read_text())
    for leaf in _leaves(values):
        assert any(leaf == k or leaf.startswith(f"{k}.") for k in listed), leaf


def test_readmes_start_with_usage() -> None:
    for path, command in (
        (generator.STATIC_README, "helm install search charts/indexforge"),
        (generator.OPERATOR_README, "helm install indexforge-operator charts/indexforge-operator"),
    ):
        text = path.read_text()
        assert text.index(command) < text.index("## Values"), path
        assert "README.md#values" in text or "crds/indexforge.io_indexforges.yaml" in text


VALUES = """\
# A section comment, not a description.
# -- Documented as one row.
resources:
  limits:
    cpu: 500m
group:
  # -- A leaf in a group,
  # continued on a second line.
  leaf: 3
  # -- A | pipe and <angle> brackets.
  other: "x"
"""


def test_values_rows_group_and_documented_mappings() -> None:
    rows = list(chart_readme.values_rows(VALUES, {}))
    assert [(r.key, r.type, r.default) for r in rows] == [
        ("resources", "object", '`{"limits": {"cpu": "500m"}}`'),
        ("group.leaf", "integer", "`3`"),
        ("group.other", "string", '`"x"`'),
    ]
    assert rows[1].description == "A leaf in a group, continued on a second line."


def test_schema_types_win_over_value_types() -> None:
    schema = {"properties": {"group": {"properties": {"other": {"enum": ["x", "y"]}}}}}
    rows = {r.key: r for r in chart_readme.values_rows(VALUES, schema)}
    assert rows["group.other"].type == "x | y"


def test_table_cells_are_escaped() -> None:
    rows = list(chart_readme.values_rows(VALUES, {}))
    text = chart_readme.render(title="t", intro="i", rows=rows, source="s")
    assert "A \\| pipe and &lt;angle&gt; brackets." in text


def test_an_undocumented_value_fails_generation() -> None:
    text = VALUES + "bare: 1\n"
    rows = list(chart_readme.values_rows(text, {}))
    with pytest.raises(chart_readme.UndocumentedValues, match="bare"):
        chart_readme.render(title="t", intro="i", rows=rows, source="s")


def test_object_defaults_are_one_row_with_the_whole_default() -> None:
    spec = generator.spec_schema(generator.load_crd())
    rows = {r.key: r for r in chart_readme.schema_rows(spec, notes={}, replaces={"api.resources"})}
    default = json.loads(rows["api.resources"].default.strip("`"))
    assert default["limits"] == {"cpu": "1", "memory": "512Mi"}
    assert "replaces the whole default object" in rows["api.resources"].description
    assert rows["api.resources.requests"].default == "`{}`"
