"""Prometheus metrics: HTTP request counter + latency histogram, service Info, /metrics.

Each application owns its own `CollectorRegistry` (not the process-global one) so several
apps can live in one process (tests, benchmarks) without duplicate-series errors.
Routes are labelled by their template (`/items/{id}`), never the raw path, to keep label
cardinality bounded; unmatched paths share one label value.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
)
from prometheus_client.exposition import generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED_ROUTE = "<unmatched>"
# Latency buckets sized for an inference service: 1 ms .. 10 s. 0.2 s is the latency SLO's
# threshold (p95 < 200 ms): the SLI counts requests in that bucket, so it must be a boundary.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

access_log = logging.getLogger("indexforge.access")


class HttpMetrics:
    """The HTTP-level series of one service, registered in `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by method, route template and status code.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "http_requests_in_flight", "HTTP requests being served.", registry=registry
        )
        self.info = Info("indexforge_service", "Service version and model.", registry=registry)
        # process_resident_memory_bytes / process_cpu_seconds_total: the alert rules use them,
        # and a per-app registry does not get the default registry's process collector.
        ProcessCollector(registry=registry)

    def set_info(self, labels: Mapping[str, str]) -> None:
        self.info.info(dict(labels))


def route_template(scope: Scope) -> str:
    """The matched route's path template; FastAPI stores the route in the scope."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class HttpMetricsMiddleware:
    """Count and time every HTTP request; also writes the access log line."""

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics, skip: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.skip = skip  # e.g. /metrics itself: scraping should not count as traffic

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.skip:
            await self.app(scope, receive, send)
            return
        status = 500  # if the app dies before starting a response
        start = time.perf_counter()

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, record_status)
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - start
            labels = (scope["method"], route_template(scope), str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(elapsed)
            access_log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={"route": labels[1], "status": status, "duration_ms": elapsed * 1000},
            )


def metrics_endpoint(registry: CollectorRegistry) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint serving the registry in the Prometheus text format."""

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
