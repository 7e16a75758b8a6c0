"""skaffold.yaml: valid against skaffold's own JSON schema, and consistent with the repository.

A skaffold binary is not built here (its module pulls several hundred dependencies: too heavy
for these machines); the schema comes from skaffold's Go module instead (docs-v2/content/en/
schemas/<version>.json), downloaded once through the Go module proxy into the module cache.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.charts.helmtools import REPO

SKAFFOLD_MODULE = "github.com/GoogleContainerTools/skaffold/v2"
SKAFFOLD_VERSION = "v2.16.1"
CONFIG = REPO / "skaffold.yaml"
IMAGES = {"operator", "api", "ml", "excel"}


@cache
def skaffold_module() -> Path:
    proc = subprocess.run(
        ["go", "mod", "download", "-json", f"{SKAFFOLD_MODULE}@{SKAFFOLD_VERSION}"],
        capture_output=True, text=True, timeout=900, check=False, cwd="/",
        env={**os.environ, "GOFLAGS": "-mod=mod"},
    )  # fmt: skip
    if proc.returncode != 0:
        pytest.fail(f"go mod download {SKAFFOLD_MODULE} failed:\n{proc.stdout}{proc.stderr}")
    return Path(json.loads(proc.stdout)["Dir"])


def config() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    return doc


def schema_for(api_version: str) -> dict[str, Any]:
    version = api_version.removeprefix("skaffold/")
    path = skaffold_module() / "docs-v2" / "content" / "en" / "schemas" / f"{version}.json"
    assert path.exists(), f"skaffold {SKAFFOLD_VERSION} has no schema {version}"
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def validate(doc: dict[str, Any]) -> list[str]:
    schema = schema_for(doc["apiVersion"])
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


def test_schema_v4() -> None:
    assert re.fullmatch(r"skaffold/v4beta\d+", config()["apiVersion"])


def test_valid_against_skaffolds_schema() -> None:
    assert validate(config()) == []


def _mistake(kind: str) -> dict[str, Any]:
    doc = config()
    if kind == "field-in-wrong-place":
        doc["build"]["artifacts"][0]["dockerfile"] = "x.Dockerfile"  # belongs under docker:
    elif kind == "unknown-release-key":
        doc["profiles"][0]["deploy"]["helm"]["releases"][0]["chart"] = "c"
    elif kind == "bad-type":
        doc["deploy"]["statusCheckDeadlineSeconds"] = "soon"
    elif kind == "unknown-top-level":
        doc["deployments"] = {}
    return doc


@pytest.mark.parametrize(
    "kind", ["field-in-wrong-place", "unknown-release-key", "bad-type", "unknown-top-level"]
)
def test_schema_catches_mistakes(kind: str) -> None:
    assert validate(_mistake(kind)) != []


def _artifacts(section: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["image"].rsplit("-", 1)[-1]: a for a in section.get("artifacts", [])}


def test_artifacts_and_their_dockerfiles() -> None:
    artifacts = _artifacts(config()["build"])
    assert set(artifacts) == IMAGES
    for name, art in artifacts.items():
        dockerfile = REPO / art.get("context", ".") / art["docker"]["dockerfile"]
        assert dockerfile.exists(), dockerfile
        assert art["docker"]["dockerfile"] == f"docker/{name}.Dockerfile"
    assert artifacts["ml"]["docker"]["buildArgs"]["VARIANT"] in ("cpu", "cuda")


def test_profiles() -> None:
    profiles = {p["name"]: p for p in config()["profiles"]}
    assert {"operator", "static", "kind"} <= set(profiles)
    charts = {
        name: [r["chartPath"] for r in p.get("deploy", {}).get("helm", {}).get("releases", [])]
        for name, p in profiles.items()
    }
    assert charts["operator"] == ["charts/indexforge-operator"]
    assert charts["static"] == ["charts/indexforge"]
    for paths in charts.values():
        for path in paths:
            assert (REPO / path / "Chart.yaml").exists(), path
    assert profiles["operator"]["manifests"]["rawYaml"] == ["manifests/samples/indexforge.yaml"]
    assert (REPO / "manifests" / "samples" / "indexforge.yaml").exists()
    assert any(a.get("kubeContext", "").startswith("kind-") for a in profiles["kind"]["activation"])


def test_static_profile_sets_the_spec_image_fields() -> None:
    static = next(p for p in config()["profiles"] if p["name"] == "static")
    built = {a["image"] for a in static["build"]["artifacts"]}
    templates = static["deploy"]["helm"]["releases"][0]["setValueTemplates"]
    values = yaml.safe_load((REPO / "charts" / "indexforge" / "values.yaml").read_text())
    for key, template in templates.items():
        component, field = key.split(".")
        assert field in values[component], key  # a real spec field
        image = re.search(r"IMAGE_FULLY_QUALIFIED_(\w+)", template)
        assert image, template
        assert image.group(1) in {re.sub(r"[^A-Za-z0-9]", "_", b) for b in built}


def test_sync_rules_match_python_sources() -> None:
    for art in config()["build"]["artifacts"]:
        for rule in art["sync"]["manual"]:
            matches = [p for p in REPO.glob(rule["src"]) if p.is_file()]
            assert matches, f"sync rule {rule['src']} matches no file"
            assert all(p.suffix == ".py" for p in matches)
            assert rule["src"].startswith(rule["strip"])
            package = rule["dest"].rsplit("/", 1)[-1]
            assert package in ("indexforge_operator", "indexforge_services")
