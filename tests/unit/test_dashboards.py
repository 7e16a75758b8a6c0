"""Dashboards: grafana-foundation-sdk round trip and the SDK's JSON Schema (unknown keys and
wrong types fail), stable uids, one ConfigMap each, the sidecar label, Grafana's volume."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from indexforge_operator.builders.dashboards import MODULES, dashboards, uid_digest
from indexforge_operator.naming import Names
from tests.reference import reference_dir

from .support import NAMES, build, find

# Typed decoding of panel options and Prometheus queries (otherwise they stay plain dicts).
register_default_plugins()
BOARDS = dashboards(NAMES, digest=uid_digest(NAMES))


def _lost(before: Any, after: Any, path: str = "") -> Iterator[str]:
    """Paths of `before` that `after` lacks or changed (`after` may add defaults)."""
    if isinstance(before, dict):
        if not isinstance(after, dict):
            yield path
            return
        for key, value in before.items():
            if key not in after:
                yield f"{path}.{key}"
            else:
                yield from _lost(value, after[key], f"{path}.{key}")
    elif isinstance(before, list):
        if not isinstance(after, list) or len(before) != len(after):
            yield path
            return
        for i, (a, b) in enumerate(zip(before, after, strict=True)):
            yield from _lost(a, b, f"{path}[{i}]")
    elif before != after:
        yield f"{path}: {before!r} -> {after!r}"


def round_trip_problems(board: dict[str, Any]) -> list[str]:
    """What the SDK's model drops or changes: keys it does not know, values it re-types."""
    decoded = Dashboard.from_json(copy.deepcopy(board))
    again = json.loads(json.dumps(decoded, cls=JSONEncoder))
    return list(_lost(board, again))


def schema_problems(board: dict[str, Any]) -> list[str]:
    # The SDK's generated JSON Schema of the dashboard model (v0.0.18, Grafana 12.3).
    schema = json.loads((reference_dir() / "grafana" / "dashboard.jsonschema.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(board)]


@pytest.mark.parametrize("key", list(MODULES))
def test_dashboard_round_trips_through_the_sdk(key: str) -> None:
    assert round_trip_problems(BOARDS[key]) == []
    assert schema_problems(BOARDS[key]) == []


def test_a_typo_in_a_key_is_caught() -> None:
    board = copy.deepcopy(BOARDS["overview"])
    board["panels"][0]["fieldConfg"] = board["panels"][0].pop("fieldConfig")
    board["refersh"] = board.pop("refresh")
    assert {".refersh", ".panels[0].fieldConfg"} <= set(round_trip_problems(board))
    assert schema_problems(board)


def test_a_wrong_type_is_caught() -> None:
    board = copy.deepcopy(BOARDS["slo"])
    board["panels"][0]["gridPos"]["h"] = "8"
    assert schema_problems(board)


def test_uids_are_stable_unique_and_short() -> None:
    uids = [b["uid"] for b in BOARDS.values()]
    assert len(set(uids)) == len(uids)
    assert all(len(u) <= 40 for u in uids)
    # The original dashboard keeps its uid (links and stars in Grafana survive).
    assert BOARDS["overview"]["uid"] == "indexforge-" + uid_digest(NAMES)
    longest = Names(instance="a" * 40, namespace="n" * 63)
    assert all(len(b["uid"]) <= 40 for b in dashboards(longest, digest="f" * 16).values())


def test_panels_do_not_overlap_and_ids_are_unique() -> None:
    for key, board in BOARDS.items():
        cells = set()
        ids = [p["id"] for p in board["panels"]]
        assert len(set(ids)) == len(ids), key
        for panel in board["panels"]:
            g = panel["gridPos"]
            area = {
                (x, y)
                for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])
            }
            assert not cells & area, (key, panel["title"])
            cells |= area


@pytest.mark.parametrize("prometheus_operator", [False, True])
def test_one_config_map_per_dashboard_and_grafana_mounts_them_all(
    prometheus_operator: bool,
) -> None:
    objs = build({}, prometheus_operator=prometheus_operator)
    maps = [find(objs, "ConfigMap", NAMES.grafana_dashboard(key)) for key in MODULES]
    for key, cm in zip(MODULES, maps, strict=True):
        assert json.loads(cm["data"][f"indexforge-{key}.json"]) == BOARDS[key]
        sidecar = cm["metadata"]["labels"].get("grafana_dashboard")
        assert sidecar == ("1" if prometheus_operator else None)
    grafana = next(o for o in objs if o["metadata"]["name"] == NAMES.component("grafana")
                   and o["kind"] in ("Deployment", "StatefulSet"))  # fmt: skip
    volume = next(
        v for v in grafana["spec"]["template"]["spec"]["volumes"] if v["name"] == "dashboards"
    )
    sources = [s["configMap"]["name"] for s in volume["projected"]["sources"]]
    assert sources == [NAMES.grafana_dashboard(key) for key in MODULES]


def test_cluster_grafana_gets_the_dashboards_without_ours() -> None:
    """prometheus-operator mode with our Grafana off: the ConfigMaps stay for the sidecar."""
    raw = {"monitoring": {"grafana": {"enabled": False}}}
    po = build(raw, prometheus_operator=True)
    assert find(po, "ConfigMap", NAMES.grafana_dashboard("slo"))
    assert not [o for o in build(raw) if o["metadata"]["name"].startswith(
        NAMES.grafana_dashboard(""))]  # fmt: skip
