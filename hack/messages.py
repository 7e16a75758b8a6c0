"""Generate `schemas/messages/*.json` from the message models (`services/messaging/schemas.py`).

Usage: ``python -m hack.messages`` writes the files; ``--check`` writes nothing and exits 1
listing stale or extra files (CI, and `tests/services/test_message_schemas.py`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from indexforge_services.messaging.schemas import json_schemas

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "schemas" / "messages"


def rendered() -> dict[Path, str]:
    return {
        OUT / name: json.dumps(schema, indent=2, sort_keys=True) + "\n"
        for name, schema in json_schemas().items()
    }


def stale(files: dict[Path, str]) -> list[str]:
    bad = [
        str(path.relative_to(REPO))
        for path, text in files.items()
        if not path.exists() or path.read_text() != text
    ]
    if OUT.exists():  # a schema whose model is gone must go too
        bad += [str(p.relative_to(REPO)) for p in sorted(OUT.glob("*.json")) if p not in files]
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.messages", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a file is stale")
    args = parser.parse_args(argv)
    files = rendered()
    if args.check:
        bad = stale(files)
        if bad:
            print("stale message schemas (run `python -m hack.messages`):", *bad, sep="\n  ")
            return 1
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text)
    for path in OUT.glob("*.json"):
        if path not in files:
            path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
