"""The generated CRD: current on disk, structural, bounded, described, defaults consistent."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from indexforge_operator.crd import CRD_FILE, build_crd, crd_yaml, spec_schema
from indexforge_operator.openapi import apply_defaults, unbounded, undescribed
from indexforge_operator.spec import IndexForgeSpec
from indexforge_operator.spec_checks import REQUESTS_WITHIN_LIMITS_RULE, qualified_name_rule

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_KEYS = {
    "$ref",
    "$defs",
    "anyOf",
    "allOf",
    "oneOf",
    "const",
    "title",
    "propertyNames",
    "patternProperties",
}


def _version() -> dict[str, Any]:
    version: dict[str, Any] = build_crd()["spec"]["versions"][0]
    return version


def _walk(node: Any, path: str = "") -> Any:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


def test_checked_in_crd_is_current() -> None:
    on_disk = (ROOT / CRD_FILE).read_text(encoding="utf-8")
    assert on_disk == crd_yaml(), f"{CRD_FILE} is stale: run `indexforge crd > {CRD_FILE}`"


def test_crd_identity() -> None:
    crd = build_crd()
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == "indexforges.indexforge.io"
    spec = crd["spec"]
    assert (spec["group"], spec["scope"], spec["names"]["kind"]) == (
        "indexforge.io",
        "Namespaced",
        "IndexForge",
    )
    assert spec["names"]["shortNames"] == ["ifg"]
    version = _version()
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Ready", "Phase", "API endpoint", "GPUs", "Age"]


def test_schema_is_structural() -> None:
    schema = _version()["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        if path.endswith("/x-kubernetes-validations") or "/default" in path:
            continue
        assert not FORBIDDEN_KEYS & node.keys(), path
        if "properties" in node or "additionalProperties" in node:
            assert node.get("type") == "object", path
            assert node.get("additionalProperties") is not False, path
        if "items" in node:
            assert node.get("type") == "array", path
        if "exclusiveMinimum" in node:
            assert node["exclusiveMinimum"] is True, path
    for name, prop in schema["properties"]["spec"]["properties"].items():
        assert "type" in prop, name


def test_every_string_list_and_map_is_bounded() -> None:
    assert unbounded(spec_schema()) == []
    status = _version()["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert unbounded(status) == []


def test_every_spec_field_is_described() -> None:
    assert undescribed(spec_schema()) == []


def test_free_form_only_where_intended() -> None:
    schema = _version()["schema"]["openAPIV3Schema"]
    free = [p for p, n in _walk(schema) if n.get("x-kubernetes-preserve-unknown-fields")]
    assert free == ["/properties/status/properties/kopf"]


def test_api_server_defaults_equal_the_model_defaults() -> None:
    def pruned(value: Any) -> Any:
        if isinstance(value, dict):
            items = {k: pruned(v) for k, v in value.items()}
            return {k: v for k, v in items.items() if v not in (None, {}, [])}
        return value

    from_schema = apply_defaults(spec_schema(), {})
    from_model = IndexForgeSpec.model_validate({}).model_dump(by_alias=True, mode="json")
    assert pruned(from_schema) == pruned(from_model)
    # And what the API server stores validates back into the same model.
    assert IndexForgeSpec.model_validate(from_schema) == IndexForgeSpec.model_validate({})


def test_objects_with_rules_have_complete_defaults() -> None:
    # The API server runs an object's CEL rules on its `default` without applying the nested
    # defaults first; a rule reading a field missing from the default breaks the CRD.
    for path, node in _walk(spec_schema()):
        if "x-kubernetes-validations" in node and isinstance(node.get("default"), dict):
            assert apply_defaults(node, node["default"]) == node["default"], path


def test_rules_only_read_fields_that_are_always_there() -> None:
    # A field without a default and not required may be absent: CEL then fails with
    # "no such key" instead of the rule's message, so such reads must sit behind has().
    for path, node in _walk(spec_schema()):
        properties = node.get("properties", {})
        present = {k for k, v in properties.items() if "default" in v} | set(
            node.get("required", [])
        )
        for entry in node.get("x-kubernetes-validations", []):
            rule = entry["rule"]
            unguarded = re.sub(r"has\((old)?[sS]elf\.\w+\)", "", rule)
            for field in re.findall(r"(?:self|oldSelf)\.(\w+)\b(?!\()", unguarded):
                if field == "metadata":
                    continue
                guarded = f"has(self.{field})" in rule
                assert field in present or guarded, f"{path}: {rule!r} reads {field}"


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("api.autoscaling", "self.minReplicas <= self.maxReplicas"),
        ("ml.gpu", "!self.enabled || self.count >= 1"),
        ("redis.app.persistence.storageClassName", "self == oldSelf"),
        ("weaviate.persistence.storageClassName", "self == oldSelf"),
        ("weaviate.persistence.size", "quantity(self).compareTo(quantity(oldSelf)) >= 0"),
        ("monitoring.grafana.storageSize", "quantity(self).compareTo(quantity(oldSelf)) >= 0"),
        ("sentry", "!has(self.dsn)"),
        ("sentry", "!self.enabled || has(self.dsnSecretRef)"),
        (
            "gateway.ipRestriction",
            "!self.enabled || (has(self.allow) && size(self.allow) > 0)"
            " || (has(self.deny) && size(self.deny) > 0)",
        ),
        ("gateway.routes", "self.api != self.ml"),
    ],
)
def test_cross_field_rules_are_in_the_schema(path: str, rule: str) -> None:
    node = spec_schema()
    for part in path.split("."):
        node = node["properties"][part]
    assert rule in [r["rule"] for r in node.get("x-kubernetes-validations", [])]


def test_instance_name_rules_at_the_root() -> None:
    rules = [r["rule"] for r in _version()["schema"]["openAPIV3Schema"]["x-kubernetes-validations"]]
    assert any("size(self.metadata.name) <= 40" in r for r in rules)


def test_consumers_are_a_list_map_keyed_by_username() -> None:
    consumers = spec_schema()["properties"]["gateway"]["properties"]["keyAuth"]["properties"][
        "consumers"
    ]
    assert consumers["x-kubernetes-list-type"] == "map"
    assert consumers["x-kubernetes-list-map-keys"] == ["username"]
    assert consumers["items"]["required"] == ["username"]


def test_every_resources_block_keeps_requests_within_limits() -> None:
    blocks = [(p, n) for p, n in _walk(spec_schema()) if p.endswith("/properties/resources")]
    assert len(blocks) >= 12, [p for p, _ in blocks]  # every component, the exporters too
    for path, node in blocks:
        entries = node.get("x-kubernetes-validations", [])
        assert REQUESTS_WITHIN_LIMITS_RULE in [e["rule"] for e in entries], path
        entry = next(e for e in entries if e["rule"] == REQUESTS_WITHIN_LIMITS_RULE)
        assert "quantity(" in entry["rule"] and "resources.requests." in entry["messageExpression"]


def test_every_map_checks_its_keys_are_qualified_names() -> None:
    maps = [
        (p, n) for p, n in _walk(spec_schema()) if isinstance(n.get("additionalProperties"), dict)
    ]
    assert {p.rsplit("/", 1)[-1] for p, _ in maps} == {
        "requests",
        "limits",
        "nodeSelector",
        "labels",
        "namespaceSelector",
        "podSelector",
    }
    for path, node in maps:
        rules = [e["rule"] for e in node.get("x-kubernetes-validations", [])]
        assert f"self.all(k, {qualified_name_rule('k')})" in rules, path


def test_toleration_keys_are_qualified_names() -> None:
    gpu = spec_schema()["properties"]["ml"]["properties"]["gpu"]
    key = gpu["properties"]["tolerations"]["items"]["properties"]["key"]
    assert qualified_name_rule("self") in [e["rule"] for e in key["x-kubernetes-validations"]]


@pytest.mark.parametrize("field", ["allow", "deny"])
def test_ip_restriction_entries_are_ips_or_cidrs(field: str) -> None:
    gateway = spec_schema()["properties"]["gateway"]["properties"]
    items = gateway["ipRestriction"]["properties"][field]["items"]
    assert [e["rule"] for e in items["x-kubernetes-validations"]] == ["isIP(self) || isCIDR(self)"]
    assert items["maxLength"] <= 64  # keeps the rule's cost estimate small


def test_cel_string_literals_have_no_backslash_escapes() -> None:
    # "\." is an invalid escape in a CEL string literal: the API server refuses the whole CRD.
    # Regexes inside rules use character classes ("[.]") instead.
    for path, node in _walk(spec_schema()):
        for entry in node.get("x-kubernetes-validations", []):
            for key in ("rule", "messageExpression"):
                assert "\\" not in entry.get(key, ""), f"{path}: {entry[key]!r}"
