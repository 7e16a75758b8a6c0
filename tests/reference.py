"""Where the upstream reference data lives (Kong schemas, third-party CRDs).

It sits beside the repository (`../shared/reference`) and is read at test time, never copied
in. A checkout elsewhere finds it through INDEXFORGE_REFERENCE_DIR or the machine's /work.
Missing data fails the tests that need it: a silent skip would hide an unvalidated config.
"""

from __future__ import annotations

import os
from pathlib import Path

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
