"""The application factory every service uses: one place wires the shared concerns.

`create_service_app(settings, ...)` returns a FastAPI app with correlation ids, HTTP metrics
and `/metrics` (unless it has its own port: `metrics_server.py`), the gateway token check,
JSON errors, body limits, `/healthz` + `/readyz`, an optional Redis cache, OpenTelemetry
tracing and Sentry. The service adds its routers and a `lifespan` that receives the
`ServiceContext` (to load models, register readiness checks, ...).

Middleware order, outermost first: correlation id -> metrics/access log -> gateway token ->
body guard -> unhandled-error -> FastAPI. So every log line has the id, the metrics see the
final status (401s included), and a caller without a token never gets its body read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from sentry_sdk.transport import Transport

from .cache import Cache
from .correlation import CorrelationIdMiddleware
from .errors import BodyGuardMiddleware, UnhandledErrorMiddleware, install_error_handlers
from .gateway_auth import GatewayAuthMiddleware, GatewayTokens, rejected_counter
from .health import HealthChecks, health_router
from .metrics import HttpMetrics, HttpMetricsMiddleware, metrics_endpoint
from .metrics_server import MetricsServer, start_metrics_server
from .sentry import EventEnricher, init_sentry
from .settings import ServiceSettings
from .tracing import instrument_app, make_provider


@dataclass
class ServiceContext:
    """Shared resources of one running service; available to routes via `Context`."""

    settings: ServiceSettings
    registry: CollectorRegistry
    http_metrics: HttpMetrics
    health: HealthChecks
    cache: Cache
    tracer_provider: TracerProvider | None
    gateway_tokens: GatewayTokens
    state: dict[str, Any] = field(default_factory=dict)  # service-owned objects
    # Where the metrics listener binds (with settings.metrics_port): the runner sets the
    # service's own --host; loopback otherwise (tests, an app served some other way).
    metrics_host: str = "127.0.0.1"


ServiceLifespan = Callable[[ServiceContext], AbstractAsyncContextManager[None]]


def get_context(request: Request) -> ServiceContext:
    ctx = request.app.state.service
    assert isinstance(ctx, ServiceContext)
    return ctx


Context = Annotated[ServiceContext, Depends(get_context)]


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str = "",
    routers: Iterable[APIRouter] = (),
    lifespan: ServiceLifespan | None = None,
    info: Mapping[str, str] | None = None,
    cache_name: str = "cache",
    cache_ttl: float | None = None,
    sentry_enrichers: Iterable[EventEnricher] = (),
    sentry_transport: Transport | None = None,
    body_limits: Mapping[str, int] | None = None,
    stream_paths: Iterable[str] = (),
    auth_exempt: Iterable[str] = (),
) -> FastAPI:
    """`body_limits` maps exact paths (upload routes) to their own body size limit, and
    `stream_paths` are the paths whose routes read the body as a stream (never buffered);
    `auth_exempt` lists paths callers reach without a gateway token (besides probes and
    /metrics)."""
    registry = CollectorRegistry(auto_describe=True)
    http_metrics = HttpMetrics(registry)
    http_metrics.set_info(
        {"service": settings.service_name, "version": settings.version, **(info or {})}
    )
    ctx = ServiceContext(
        settings=settings,
        registry=registry,
        http_metrics=http_metrics,
        health=HealthChecks(),
        cache=Cache.from_settings(
            settings, registry=registry, name=cache_name, default_ttl=cache_ttl
        ),
        tracer_provider=make_provider(settings),
        gateway_tokens=GatewayTokens.from_settings(settings),
    )
    if ctx.cache.enabled:
        ctx.health.add("redis", ctx.cache.ping, required=False)
    static_secrets = settings.secret_values()
    init_sentry(
        settings,
        enrichers=sentry_enrichers,
        transport=sentry_transport,
        # Rotated tokens, passwords and keys come from files: asked for at every event.
        secrets=lambda: (
            *static_secrets,
            *ctx.gateway_tokens.current(),
            *settings.rotating_secret_values(),
        ),
    )

    @asynccontextmanager
    async def app_lifespan(_: FastAPI) -> AsyncIterator[None]:
        metrics: MetricsServer | None = None
        try:
            if settings.metrics_port is not None:
                # Bound here, so a taken port fails the start-up instead of going unnoticed.
                metrics = start_metrics_server(
                    registry, host=ctx.metrics_host, port=settings.metrics_port
                )
            if lifespan is None:
                yield
            else:
                async with lifespan(ctx):
                    yield
        finally:
            if metrics is not None:
                metrics.stop()
            await ctx.cache.close()
            if ctx.tracer_provider is not None:
                ctx.tracer_provider.shutdown()

    app = FastAPI(
        title=title, description=description, version=settings.version, lifespan=app_lifespan
    )
    app.state.service = ctx
    install_error_handlers(app)
    app.include_router(health_router(ctx.health))
    for router in routers:
        app.include_router(router)
    if settings.metrics_port is None:
        app.add_route("/metrics", metrics_endpoint(registry), include_in_schema=False)

    # add_middleware prepends: the last one added is the outermost.
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(
        BodyGuardMiddleware,
        max_bytes=settings.max_body_bytes,
        path_limits=body_limits,
        stream_paths=stream_paths,
    )
    app.add_middleware(
        GatewayAuthMiddleware,
        tokens=ctx.gateway_tokens,
        required=settings.gateway_auth_required,
        rejected=rejected_counter(registry),
        exempt=auth_exempt,
    )
    app.add_middleware(HttpMetricsMiddleware, metrics=http_metrics, skip=frozenset({"/metrics"}))
    app.add_middleware(CorrelationIdMiddleware)
    if ctx.tracer_provider is not None:
        instrument_app(app, ctx.tracer_provider)
    return app
