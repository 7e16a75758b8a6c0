"""`indexforge-api --host H --port P [--worker]`: run the API service.

`--worker` (with INDEXFORGE_INGEST_MODE=queue) also consumes ingestion messages: the worker
Deployment runs the API image this way (health and metrics as usual).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Literal

from ..common.runner import run_service
from .app import create_app
from .settings import ApiSettings


class WorkerSettings(ApiSettings):
    service_name: str = "indexforge-worker"
    ingest_mode: Literal["inline", "queue"] = "queue"
    ingest_worker: bool = True


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    worker = "--worker" in args
    args = [a for a in args if a != "--worker"]
    settings_type = WorkerSettings if worker else ApiSettings
    run_service("indexforge-api", create_app, settings_type, args, default_port=8000)


if __name__ == "__main__":
    main()
