"""`indexforge-excel --host H --port P`: run the Excel processor."""

from __future__ import annotations

from collections.abc import Sequence

from ..common.runner import run_service
from .app import create_app
from .settings import ExcelSettings


def main(argv: Sequence[str] | None = None) -> None:
    run_service("indexforge-excel", create_app, ExcelSettings, argv, default_port=8000)


if __name__ == "__main__":
    main()
