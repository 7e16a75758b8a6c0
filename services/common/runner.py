"""Console-script entry shared by the services: `--host`/`--port` flags, the rest from env.

Defaults bind loopback; the charts pass `--host 0.0.0.0` inside pods. The metrics listener
(`INDEXFORGE_METRICS_PORT`) binds the same host.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import TypeVar

import uvicorn
from fastapi import FastAPI

from .app import ServiceContext
from .logging import configure_logging
from .settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


def parse_args(prog: str, argv: Sequence[str] | None, *, default_port: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Other settings come from INDEXFORGE_* environment variables.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=default_port, help="TCP port")
    return parser.parse_args(argv)


def run_service(
    prog: str,
    build_app: Callable[[S], FastAPI],
    settings_type: type[S],
    argv: Sequence[str] | None = None,
    *,
    default_port: int = 8080,
) -> None:
    args = parse_args(prog, argv, default_port=default_port)
    settings = settings_type()
    configure_logging(
        service=settings.service_name, level=settings.log_level, json_lines=settings.log_json
    )
    app = build_app(settings)
    ctx: ServiceContext = app.state.service
    ctx.metrics_host = args.host
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,  # keep our JSON handler
        access_log=False,  # the metrics middleware writes access lines with correlation ids
        timeout_graceful_shutdown=10,
    )
