"""Every kong.yml we render — each sample CR through the operator, each ci values file through
the static chart — is accepted by Kong 3.9's published schemas (decK document schema and the
plugin schemas, unknown plugin config keys rejected), and the Kong image matches that version.

Kong cannot run on this machine (no container runtime); this is the closest real check, and
the kind e2e path still sends real traffic through Kong."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from indexforge_operator.spec import IndexForgeSpec
from tests.charts import kong_schema
from tests.charts.helmtools import STATIC_CHART, STATIC_VARIANTS, helm_template, render_cr
from tests.cluster.tools import REPO_ROOT

SAMPLES = sorted((REPO_ROOT / "manifests" / "samples").glob("*.yaml"))


def _kong_configs(stream: str) -> list[dict[str, Any]]:
    """kong.yml of a Secret, or (static chart with credentials.existingSecret) the config in
    the Kong container's KONG_DECLARATIVE_CONFIG_STRING, references unresolved."""
    out = []
    for doc in yaml.safe_load_all(stream):
        if doc and doc.get("kind") == "Secret" and "kong.yml" in (doc.get("data") or {}):
            out.append(yaml.safe_load(base64.b64decode(doc["data"]["kong.yml"])))
        elif doc and doc.get("kind") == "Secret" and "kong.yml" in (doc.get("stringData") or {}):
            out.append(yaml.safe_load(doc["stringData"]["kong.yml"]))
        elif doc and doc.get("kind") == "Deployment":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                for var in container.get("env") or []:
                    if var["name"] == "KONG_DECLARATIVE_CONFIG_STRING":
                        out.append(yaml.safe_load(var["value"]))
    return out


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_operator_kong_config_is_valid_for_kong(sample: Path) -> None:
    configs = _kong_configs(render_cr(sample))
    cr = next(d for d in yaml.safe_load_all(sample.read_text()) if d and d["kind"] == "IndexForge")
    spec = IndexForgeSpec.model_validate(cr.get("spec") or {})
    assert len(configs) == (1 if spec.gateway.enabled else 0)
    for config in configs:
        assert kong_schema.problems(config) == []


# Fixtures of the kubernetes provider: with externalSecrets kong.yml is a template in an
# ExternalSecret (its structure is the same, compared with the operator's by the parity test).
KONG_VARIANTS = [v for v in STATIC_VARIANTS if "provider: externalSecrets" not in v.read_text()]


@pytest.mark.parametrize("existing", [False, True], ids=["generated", "existing-secret"])
@pytest.mark.parametrize("values", KONG_VARIANTS, ids=lambda p: p.stem)
def test_static_chart_kong_config_is_valid_for_kong(values: Path, existing: bool) -> None:
    """Both credential modes (test_credentials.py also checks the resolved existingSecret
    config); gateway-off renders none."""
    sets = ["credentials.existingSecret=creds"] if existing else []
    configs = _kong_configs(helm_template(STATIC_CHART, values=[values], set_values=sets))
    gateway = (yaml.safe_load(values.read_text()).get("gateway") or {}).get("enabled", True)
    assert len(configs) == (1 if gateway else 0)
    for config in configs:
        assert kong_schema.problems(config) == []


def test_the_validator_rejects_what_kong_would() -> None:
    """The check can fail: a typo in a plugin key, a wrong type, an unknown plugin, an unknown
    top-level entity are each reported with where they are."""
    config = {
        "_format_version": "3.0",
        "services": [{"name": "api", "url": "http://x:8000", "routes": [], "plugins": [
            {"name": "rate-limiting", "config": {"minute": 5, "polcy": "local"}},
        ]}],
        "plugins": [
            {"name": "proxy-cache", "config": {"cache_ttl": "soon"}},
            {"name": "no-such-plugin", "config": {}},
        ],
        "upstreamz": [],
    }  # fmt: skip
    found = "\n".join(kong_schema.problems(config))
    assert "polcy" in found and "services[api].rate-limiting" in found
    assert "cache_ttl" in found and "no-such-plugin" in found and "upstreamz" in found


def test_deployed_kong_image_matches_the_schema_version() -> None:
    image = IndexForgeSpec().gateway.image
    assert kong_schema.image_minor(image) == kong_schema.SCHEMA_VERSION, image
    values = yaml.safe_load((STATIC_CHART / "values.yaml").read_text())
    assert kong_schema.image_minor(values["gateway"]["image"]) == kong_schema.SCHEMA_VERSION
