"""`indexforge-ml --host H --port P`: run the ML inference service."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from ..common.runner import run_service
from .settings import MLSettings


def _create_app(settings: MLSettings) -> FastAPI:
    # Imported only once the settings are valid: the app pulls in torch (seconds), and a
    # mistyped setting should fail before that, not after.
    from .app import create_app

    return create_app(settings)


def main(argv: Sequence[str] | None = None) -> None:
    run_service("indexforge-ml", _create_app, MLSettings, argv, default_port=8080)


if __name__ == "__main__":
    main()
