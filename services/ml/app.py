"""Build the ML service application from settings (and, in tests, an already-loaded model)."""

from __future__ import annotations

from fastapi import FastAPI
from sentry_sdk.transport import Transport

from ..common.app import create_service_app
from .model import Encoder
from .routes import api, weaviate
from .runtime import MLService
from .settings import MLSettings


def create_app(
    settings: MLSettings | None = None,
    *,
    encoder: Encoder | None = None,
    sentry_transport: Transport | None = None,
) -> FastAPI:
    """`encoder` skips loading the model (tests share one across apps; fakes inject errors)."""
    settings = settings or MLSettings()
    service = MLService(settings, encoder=encoder)
    app = create_service_app(
        settings,
        title="IndexForge ML inference",
        description="Sentence embeddings; speaks Weaviate's text2vec-transformers protocol.",
        routers=[weaviate.router, api.router],
        lifespan=service.lifespan,
        info={"model": service.model_name, "device": service.device},
        cache_name="ml-embeddings",
        cache_ttl=settings.embedding_cache_ttl_seconds,
        sentry_enrichers=[service.sentry_enricher],
        sentry_transport=sentry_transport,
    )
    service.attach(app.state.service)
    app.state.ml_service = service
    return app
