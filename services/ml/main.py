"""`indexforge-ml --host H --port P`: run the ML inference service."""

from __future__ import annotations

from collections.abc import Sequence

from ..common.runner import run_service
from .app import create_app
from .settings import MLSettings


def main(argv: Sequence[str] | None = None) -> None:
    run_service("indexforge-ml", create_app, MLSettings, argv, default_port=8080)


if __name__ == "__main__":
    main()
