"""Build the Excel processor application from settings."""

from __future__ import annotations

from fastapi import FastAPI
from sentry_sdk.transport import Transport

from ..common.app import create_service_app
from .routes import PARSE_PATH, router
from .service import ExcelService
from .settings import MULTIPART_OVERHEAD_BYTES, ExcelSettings


def create_app(
    settings: ExcelSettings | None = None, *, sentry_transport: Transport | None = None
) -> FastAPI:
    settings = settings or ExcelSettings()
    app = create_service_app(
        settings,
        title="IndexForge Excel processor",
        description="Reads .xlsx uploads into sheet/row records (streaming, with limits).",
        routers=[router],
        cache_name="excel-results",
        cache_ttl=settings.result_cache_ttl_seconds,
        sentry_transport=sentry_transport,
        # The upload route takes files up to max_upload_bytes; the file check itself says 413
        # with the file's size, this only stops bodies that cannot possibly fit.
        body_limits={PARSE_PATH: settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES},
    )
    app.state.excel_service = ExcelService(settings, app.state.service)
    return app
