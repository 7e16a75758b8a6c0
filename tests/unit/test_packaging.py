"""pyproject lists every package folder (setuptools cannot discover renamed folders)."""

from __future__ import annotations

import tomllib

from tests.cluster.tools import REPO_ROOT


def _declared() -> tuple[dict[str, str], set[str]]:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return config["package-dir"], set(config["packages"])


def test_every_package_folder_is_declared_and_every_declared_package_exists() -> None:
    package_dir, declared = _declared()
    found: set[str] = set()
    for import_root, folder in package_dir.items():
        base = REPO_ROOT / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            found.add(".".join([import_root, *rel.parts]))
    assert found == declared, (
        f"missing from pyproject: {sorted(found - declared)}; stale: {sorted(declared - found)}"
    )
