"""Deployed images against what the tests run (README, "Component versions").

Where the tests build a component from its Go module, the deployed image must be the same
release. Where Debian provides the test binary, the README table states both versions; these
tests keep that table true.
"""

from __future__ import annotations

import re

from indexforge_operator.spec import IndexForgeSpec
from tests.cluster.tools import JAEGER_RELEASE, REPO_ROOT, TOOLS

README = REPO_ROOT / "README.md"


def _tag(image: str) -> str:
    return image.rpartition(":")[2].lstrip("v")


def test_go_built_components_are_the_deployed_releases() -> None:
    spec = IndexForgeSpec()
    assert _tag(spec.weaviate.image) == TOOLS["weaviate-server"].version.lstrip("v")
    assert _tag(spec.monitoring.jaeger.image) == JAEGER_RELEASE.lstrip("v")
    assert _tag(spec.redis.app.exporter.image) == TOOLS["redis_exporter"].version.lstrip("v")


def _table() -> dict[str, tuple[str, str]]:
    """component -> (deployed, tested) from the README's version table."""
    text = README.read_text()
    section = text[text.index("## Component versions") :]
    section = section[: section.index("\n## ", 3)]
    rows = re.findall(r"^\| ([^|]+) \| `([^`]+)` \| ([^|]+) \|", section, re.MULTILINE)
    return {name.strip(): (image, tested.strip()) for name, image, tested in rows}


def test_the_readme_table_lists_every_deployed_image() -> None:
    spec = IndexForgeSpec()
    deployed = {
        spec.weaviate.image,
        spec.redis.app.image,
        spec.redis.app.exporter.image,
        spec.gateway.image,
        spec.messaging.rabbitmq.image,
        spec.monitoring.prometheus.image,
        spec.monitoring.alertmanager.image,
        spec.monitoring.grafana.image,
        spec.monitoring.jaeger.image,
        spec.monitoring.config_reloader.image,
    }
    listed = {image for image, _ in _table().values()}
    assert deployed <= listed, f"missing from the README table: {sorted(deployed - listed)}"
    assert listed <= deployed, f"stale in the README table: {sorted(listed - deployed)}"
