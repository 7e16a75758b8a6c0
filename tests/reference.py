"""Where the upstream reference data lives (Kong schemas, third-party CRDs).

It sits beside the repository (`../shared/reference`) and is read at test time, never copied
in. A checkout elsewhere finds it through INDEXFORGE_REFERENCE_DIR or the machine's /work.
Missing data fails the tests that need it: a silent skip would hide an unvalidated config.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def reference_dir() -> Path:
    candidates = (
        [Path(os.environ["INDEXFORGE_REFERENCE_DIR"])]
        if os.environ.get("INDEXFORGE_REFERENCE_DIR")
        else []
    )
    candidates += [p / "shared" / "reference" for p in REPO.parents]
    candidates.append(Path("/work/shared/reference"))
    for path in candidates:
        if path.is_dir():
            return path
    raise FileNotFoundError(
        "upstream reference data not found (set INDEXFORGE_REFERENCE_DIR); looked in "
        + ", ".join(str(c) for c in candidates)
    )


def crd_files(group: str) -> list[Path]:
    """CRD files of one group directory, e.g. 'prometheus-operator', 'istio'."""
    return sorted((reference_dir() / "crds" / group).glob("*.yaml"))


class _CrdLoader(yaml.SafeLoader):
    """Safe loader reading a bare `=` as the string it is in a CRD enum (matchType: =);
    PyYAML follows YAML 1.1, where `=` is the `value` tag, and fails on it otherwise."""


def _scalar(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_CrdLoader.add_constructor("tag:yaml.org,2002:value", _scalar)


def load_crd(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.load(path.read_text(), Loader=_CrdLoader)
    return doc


def crd_schema(path: Path, version: str | None = None) -> dict[str, Any]:
    """The openAPIV3Schema of one version (the first when None) of a CRD file."""
    for item in load_crd(path)["spec"]["versions"]:
        if version is None or item["name"] == version:
            schema: dict[str, Any] = item["schema"]["openAPIV3Schema"]
            return schema
    raise KeyError(f"{path.name} has no version {version}")
