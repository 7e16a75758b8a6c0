"""Build the API service application from settings."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sentry_sdk.transport import Transport

from ..common.app import ServiceContext, create_service_app
from ..common.cache import CacheFull
from ..common.errors import error_body
from ..common.health import health_router
from .cache_control import CacheControlMiddleware
from .routes import documents, search
from .runtime import ApiService
from .settings import MULTIPART_OVERHEAD_BYTES, ApiSettings


def _lifespan(ctx: ServiceContext) -> AbstractAsyncContextManager[None]:
    service = ctx.state["api"]
    assert isinstance(service, ApiService)
    return service.lifespan()


API_PREFIX = "/api/v1"
FULL_RETRY_AFTER_SECONDS = "30"


async def _state_full(_: Request, exc: Exception) -> JSONResponse:
    """The state Redis (noeviction) refused a job record: nothing was accepted."""
    body = error_body("the job store is full; retry later", code="job_store_full")
    return JSONResponse(body, status_code=503, headers={"Retry-After": FULL_RETRY_AFTER_SECONDS})


def create_app(
    settings: ApiSettings | None = None, *, sentry_transport: Transport | None = None
) -> FastAPI:
    settings = settings or ApiSettings()
    upload_limit = settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES
    app = create_service_app(
        settings,
        title="IndexForge API",
        description="Document ingestion (text, CSV, Excel) and semantic search over Weaviate.",
        routers=[documents.router, search.router],
        lifespan=_lifespan,
        cache_name="api-responses",
        cache_ttl=settings.cache_response_ttl_seconds,
        sentry_transport=sentry_transport,
        # Uploads may be files up to max_upload_bytes; the upload check names the file size.
        body_limits={documents.DOCUMENTS_PATH: upload_limit},
        # Uploads are streamed to disk by the route (`spool.py`), counted, never buffered.
        stream_paths=[documents.DOCUMENTS_PATH],
    )
    ctx: ServiceContext = app.state.service
    # Health under the gateway's route prefix too: Kong forwards /api/v1/* unchanged, so
    # `helm test` and users can check the API through the gateway.
    app.include_router(health_router(ctx.health), prefix=API_PREFIX)
    app.add_exception_handler(CacheFull, _state_full)
    service = ApiService(settings, ctx)
    ctx.state["api"] = service
    app.state.api_service = service
    # Outermost: every response (errors and 401s included) leaves with a Cache-Control.
    app.add_middleware(CacheControlMiddleware, max_age=settings.gateway_cache_max_age_seconds)
    return app
